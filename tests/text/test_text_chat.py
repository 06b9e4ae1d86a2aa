"""Chat templates and the loss mask, packing boundaries, the DPO loss and the reference policy."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from plugins.text import chat
from plugins.text.config import LoRAConfig, TextModelConfig
from plugins.text.model import load_model
from plugins.text.packing import Collator, SFTDataset
from plugins.text.task import DPOTask, dpo_loss, sequence_logps, token_logps
from text_fixtures import TINY

CONVERSATION = [
    {"role": "system", "content": "You convert units."},
    {"role": "user", "content": "Convert 37 km to m."},
    {"role": "assistant", "content": "37000 m"},
    {"role": "user", "content": "And 2 km?"},
    {"role": "assistant", "content": "2000 m"},
]


@pytest.fixture(scope="module")
def tok():
    return AutoTokenizer.from_pretrained(TINY)


def trained_text(tok, enc: chat.Encoded) -> list[str]:
    """The decoded runs of trained tokens."""
    runs, cur = [], []
    for t, m in zip(enc.input_ids, enc.mask):
        if m:
            cur.append(t)
        elif cur:
            runs.append(tok.decode(cur))
            cur = []
    if cur:
        runs.append(tok.decode(cur))
    return runs


@pytest.mark.parametrize("source", ["generation", "prefix"])
def test_assistant_only_mask_covers_exactly_the_assistant_turns(tok, source) -> None:
    template = chat.resolve_template(tok, None)
    enc = chat.encode_chat(tok, CONVERSATION, template, 256, mask_source=source)
    assert tok.decode(enc.input_ids) == chat.render(tok, CONVERSATION, template)
    # The prefix method also trains the separator the template puts after each assistant turn.
    tail = "\n" if source == "prefix" else ""
    assert trained_text(tok, enc) == [f"37000 m<|end|>{tail}", f"2000 m<|end|>{tail}"]
    assert not enc.truncated and enc.trained == sum(enc.mask) < len(enc.input_ids)


def test_generation_and_prefix_masks_agree_and_assistant_only_false_trains_everything(tok) -> None:
    template = chat.resolve_template(tok, None)
    gen = chat.encode_chat(tok, CONVERSATION, template, 256, mask_source="generation")
    pre = chat.encode_chat(tok, CONVERSATION, template, 256, mask_source="prefix")
    assert gen.input_ids == pre.input_ids
    assert all(p >= g for g, p in zip(gen.mask, pre.mask)) and sum(pre.mask) == sum(gen.mask) + 2
    full = chat.encode_chat(tok, CONVERSATION, template, 256, assistant_only=False)
    assert all(full.mask)


def test_fallback_template_when_the_tokenizer_has_none(tok) -> None:
    bare = AutoTokenizer.from_pretrained(TINY)
    bare.chat_template = None
    template = chat.resolve_template(bare, None)
    assert template == chat.FALLBACK_TEMPLATE and chat.has_generation_markers(template)
    enc = chat.encode_chat(bare, CONVERSATION[1:3], template, 256)
    assert trained_text(bare, enc) == ["37000 m<|end|>"]
    # A template without markers falls back to the prefix method and finds the same span.
    plain = chat.FALLBACK_TEMPLATE.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    assert trained_text(bare, chat.encode_chat(bare, CONVERSATION[1:3], plain, 256)) == ["37000 m<|end|>\n"]


def test_truncation_is_marked(tok) -> None:
    template = chat.resolve_template(tok, None)
    enc = chat.encode_chat(tok, CONVERSATION, template, 10)
    assert enc.truncated and len(enc.input_ids) == 10 and enc.length > 10


def test_packed_logits_equal_each_example_alone(tok) -> None:
    model = AutoModelForCausalLM.from_pretrained(TINY).eval()
    template = chat.resolve_template(tok, None)
    examples = [chat.encode_chat(tok, [{"role": "user", "content": f"Convert {n} kg to g."},
                                       {"role": "assistant", "content": f"{n}000 g"}], template, 96)
                for n in (3, 41, 159)]
    packed = SFTDataset(examples, 96, packing=True)
    assert len(packed) == 1 and packed.examples_per_row == [3]
    batch = Collator(tok.pad_token_id)([packed[0]])
    assert batch["position_ids"][0].tolist()[: len(examples[0].input_ids) + 1] == \
        list(range(len(examples[0].input_ids))) + [0]
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        start = 0
        for ex in examples:
            alone = model(input_ids=torch.tensor([ex.input_ids]), use_cache=False).logits[0]
            n = len(ex.input_ids)
            torch.testing.assert_close(logits[0, start:start + n], alone, atol=1e-5, rtol=1e-4)
            start += n
        # Padding rows keep the same per-example figures (the pad run is its own block).
        single = Collator(tok.pad_token_id)([SFTDataset(examples, 96, packing=False)[i] for i in range(3)])
        total, count = sequence_logps(model, single)
        lp, mask = token_logps(model, batch)
        assert torch.isclose(total.sum(), lp.sum(), atol=1e-4) and count.sum() == mask.sum()


def test_dpo_losses_match_a_hand_computation() -> None:
    pc, pr = torch.tensor([-3.0, -5.0]), torch.tensor([-4.0, -2.0])
    rc, rr = torch.tensor([-3.5, -4.0]), torch.tensor([-3.0, -3.0])
    beta = 0.5
    # h = (pc - rc) - (pr - rr) = [0.5 - (-1.0), -1.0 - 1.0] = [1.5, -2.0]
    h = [1.5, -2.0]
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    losses, r_c, r_r = dpo_loss(pc, pr, rc, rr, beta=beta)
    assert losses.tolist() == pytest.approx([-math.log(sig(beta * x)) for x in h], rel=1e-6)
    assert r_c.tolist() == pytest.approx([0.25, -0.5]) and r_r.tolist() == pytest.approx([-0.5, 0.5])
    smooth, _, _ = dpo_loss(pc, pr, rc, rr, beta=beta, label_smoothing=0.1)
    assert smooth.tolist() == pytest.approx(
        [-0.9 * math.log(sig(beta * x)) - 0.1 * math.log(sig(-beta * x)) for x in h], rel=1e-6)
    ipo, _, _ = dpo_loss(pc, pr, rc, rr, beta=beta, loss_type="ipo")
    assert ipo.tolist() == pytest.approx([(x - 1 / (2 * beta)) ** 2 for x in h])
    hinge, _, _ = dpo_loss(pc, pr, rc, rr, beta=beta, loss_type="hinge")
    assert hinge.tolist() == pytest.approx([max(0.0, 1 - beta * x) for x in h])
    with pytest.raises(ValueError, match="unknown DPO loss"):
        dpo_loss(pc, pr, rc, rr, beta=beta, loss_type="kto")


def test_reference_with_adapters_disabled_equals_the_base_model(tok) -> None:
    base = AutoModelForCausalLM.from_pretrained(TINY).eval()
    policy = load_model(TextModelConfig(name=str(TINY), lora=LoRAConfig(rank=4, alpha=8)))
    with torch.no_grad():  # move the adapters away from zero so the policy differs from the base
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    task = DPOTask(policy, reference="adapters_off").eval()
    template = chat.resolve_template(tok, None)
    sides = [chat.encode_pair_side(tok, "Convert 5 m to cm.", ans, template, 64) for ans in ("500 cm", "50 cm")]
    from plugins.text.packing import PairCollator, PairDataset

    batch = PairCollator(tok.pad_token_id)([PairDataset([sides[0]], [sides[1]])[0]])
    with torch.no_grad():
        expected, _ = sequence_logps(base, batch)
        reference = task.reference_logps(batch)
        policy_scores = task.side_logps(policy, batch)
    torch.testing.assert_close(reference, expected)
    assert not torch.allclose(policy_scores, expected)
    out = task(batch)
    assert set(out) >= {"loss", "rewards/chosen", "rewards/rejected", "rewards/margin", "rewards/accuracy",
                        "logps/chosen", "logps/rejected"}


def test_loss_positions_are_projected_alone_with_the_same_losses_and_gradients(tok, monkeypatch) -> None:
    """The task projects only the loss positions onto the vocabulary; losses and adapter gradients
    equal the full-logits computation's, with and without the collator's precomputed positions."""
    from plugins.text.packing import IGNORE, targets
    from plugins.text.task import SFTTask, head_only, target_logps

    template = chat.resolve_template(tok, None)
    examples = [chat.encode_chat(tok, [{"role": "user", "content": f"Convert {n} km to m."},
                                       {"role": "assistant", "content": f"{n}000 m"}], template, 96)
                for n in (3, 41, 159, 7)]
    batch = Collator(tok.pad_token_id)([SFTDataset(examples, 64, packing=True)[i] for i in range(2)])
    labels = batch["labels"]
    found = targets(labels)
    rows, cols = (labels[:, 1:] != IGNORE).nonzero(as_tuple=True)
    assert found["target_row"].tolist() == rows.tolist()
    assert found["target_ids"].tolist() == labels[rows, cols + 1].tolist()
    assert (found["target_index"] == rows * labels.shape[1] + cols).all()

    policy = load_model(TextModelConfig(name=str(TINY), lora=LoRAConfig(rank=4, alpha=8)))
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    assert head_only(policy)

    def grads(loss: torch.Tensor) -> list[torch.Tensor]:
        trained = [p for p in policy.parameters() if p.requires_grad]
        return list(torch.autograd.grad(loss, trained))

    full, mask = token_logps(policy, batch)
    expected = -full.sum() / mask.sum()
    loss = SFTTask(policy)(batch)["loss"]
    torch.testing.assert_close(loss, expected)
    for a, b in zip(grads(loss), grads(-token_logps(policy, batch)[0].sum() / mask.sum())):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)
    bare = {k: batch[k] for k in ("input_ids", "labels", "position_ids")}  # positions derived when absent
    torch.testing.assert_close(target_logps(policy, bare)[0], target_logps(policy, batch)[0])
    total, count = sequence_logps(policy, batch)
    torch.testing.assert_close(total, full.sum(-1))
    assert count.tolist() == mask.sum(-1).tolist()
    monkeypatch.setattr("plugins.text.task.HEAD_ONLY", frozenset())  # other architectures: full logits, same figures
    assert not head_only(policy)
    torch.testing.assert_close(SFTTask(policy)(batch)["loss"], expected)
