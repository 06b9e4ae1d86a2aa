"""The built-in speech modality: Whisper ASR at 16 kHz, with code-switched transcripts."""
