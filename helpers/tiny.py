"""The tiny offline pair: a locally trained tokenizer plus small Qwen3 target and draft models.

Nothing here touches the network. The tokenizer is a byte-level BPE trained on Python's own standard library, wrapped
the way Qwen tokenizers are (ChatML special tokens, ``<think>``, ``<tool_call>``, a Qwen3-style chat template). Both
models are ``Qwen3ForCausalLM`` with random weights, briefly trained on the same text so that the draft agrees with the
target some of the time, as a real draft would. The build is seeded and cached by its recipe (one shared build, copied
into each work folder): the second call returns at once.
"""

from __future__ import annotations

import hashlib
import json
import sysconfig
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from .errors import ModelFolderError
from .fsutil import atomic_directory, check_writable, copy_tree, read_json
from .paths import PathLike, resolve_workdir
from .settings import env_tiny_cache

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, Qwen3ForCausalLM

BUILD_VERSION = 1  # bump when the recipe below changes, so cached builds are rebuilt
SEED = 1234
VOCAB_SIZE = 2048
# Qwen2/Qwen3 split text before byte-level BPE with this pattern (letters, single digits, punctuation runs, spaces).
QWEN_PRETOKENIZE_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Qwen3 keeps these as ordinary added tokens (not special), so they survive decoding with skip_special_tokens.
MARKUP_TOKENS = ["<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]


@dataclass(frozen=True)
class TinyModelSize:
    """Shape of one tiny Qwen3 model."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    # The smolagents CodeAgent system prompt alone is ~3.6k tokens with this vocabulary.
    max_position_embeddings: int = 16384


TARGET_SIZE = TinyModelSize(hidden_size=64, intermediate_size=192, num_hidden_layers=6)
DRAFT_SIZE = TinyModelSize(hidden_size=64, intermediate_size=128, num_hidden_layers=4)


@dataclass(frozen=True)
class TrainingRecipe:
    """How long the tiny models see the corpus: enough to agree with each other on common code tokens."""

    steps: int = 300
    batch_size: int = 16
    sequence_length: int = 64
    learning_rate: float = 5e-3
    corpus_files: int = 60


@dataclass(frozen=True)
class TinyPair:
    """Paths of the built Hugging Face folders (each holds the shared tokenizer too)."""

    root: Path
    target: Path
    draft: Path

    @property
    def key(self) -> str:
        """The recipe key the pair was built with (changes whenever the recipe does)."""
        return str((read_json(self.root / "tiny_pair.json") or {}).get("key", "unknown"))

    def path_for(self, name: str) -> Path:
        """`target` or `draft` by name (as used in ``tiny:<name>`` preset sources)."""
        if name not in ("target", "draft"):
            raise ValueError(f"The tiny pair has 'target' and 'draft', not {name!r}.")
        return self.target if name == "target" else self.draft


def _recipe_key(recipe: TrainingRecipe) -> str:
    blob = json.dumps(
        {"v": BUILD_VERSION, "seed": SEED, "vocab": VOCAB_SIZE, "t": asdict(TARGET_SIZE), "d": asdict(DRAFT_SIZE),
         "r": asdict(recipe)},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def local_corpus(max_files: int) -> list[str]:
    """Text of the first `max_files` standard-library modules (sorted by name): offline and the same on every machine."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for path in sorted(stdlib.glob("*.py"))[:max_files]:
        texts.append(path.read_text(encoding="utf-8", errors="replace"))
    if not texts:
        raise FileNotFoundError(f"No Python sources found in {stdlib} to train the tiny tokenizer on.")
    return texts


def chat_template() -> str:
    """The Qwen3-style chat template shipped with the package."""
    text = resources.files("helpers").joinpath("data/qwen3_style_chat_template.jinja").read_text(encoding="utf-8")
    return text.rstrip("\n")


def train_tokenizer(texts: list[str]) -> PreTrainedTokenizerBase:
    """Train a Qwen-style byte-level BPE tokenizer on `texts` and wrap it as a transformers ``Qwen2Tokenizer``."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator(texts, trainer)
    state = json.loads(bpe.to_str())
    # tokenizers >= 0.22 rejects "a b" merge strings here: pass pairs.
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in state["model"]["merges"]]
    tokenizer = Qwen2Tokenizer(
        vocab=state["model"]["vocab"],
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    tokenizer.add_tokens(SPECIAL_TOKENS, special_tokens=True)
    tokenizer.add_tokens(MARKUP_TOKENS, special_tokens=False)
    tokenizer.chat_template = chat_template()
    tokenizer.model_max_length = TARGET_SIZE.max_position_embeddings
    return tokenizer


def _new_model(size: TinyModelSize, tokenizer: PreTrainedTokenizerBase, seed: int) -> Qwen3ForCausalLM:
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=size.hidden_size,
        intermediate_size=size.intermediate_size,
        num_hidden_layers=size.num_hidden_layers,
        num_attention_heads=size.num_attention_heads,
        num_key_value_heads=size.num_key_value_heads,
        head_dim=size.hidden_size // size.num_attention_heads,
        max_position_embeddings=size.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen3ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def _train(models: dict[str, Qwen3ForCausalLM], token_ids: list[int], recipe: TrainingRecipe) -> dict[str, float]:
    """Train all `models` on the same random windows of `token_ids`; returns each model's last loss."""
    import torch

    generator = torch.Generator().manual_seed(SEED)
    data = torch.tensor(token_ids, dtype=torch.long)
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=recipe.learning_rate) for name, m in models.items()}
    losses: dict[str, float] = {}
    for model in models.values():
        model.train()
    for _ in tqdm(range(recipe.steps), desc="training tiny models", leave=False):
        starts = torch.randint(0, len(data) - recipe.sequence_length - 1, (recipe.batch_size,), generator=generator)
        batch = torch.stack([data[s : s + recipe.sequence_length] for s in starts.tolist()])
        for name, model in models.items():
            loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
            optimizers[name].step()
            optimizers[name].zero_grad(set_to_none=True)
            losses[name] = loss.item()
    for model in models.values():
        model.eval()
    return losses


def _finished(root: Path, key: str) -> bool:
    """A finished build of this recipe (a missing or corrupt manifest means: build again)."""
    return (read_json(root / "tiny_pair.json") or {}).get("key") == key


def _build(dest: Path, recipe: TrainingRecipe, key: str) -> None:
    """Train the tokenizer and both models, and write them to `dest` atomically."""
    import time

    import torch

    check_writable(dest.parent)  # fail before minutes of training whose result could not be saved
    start = time.perf_counter()
    # One thread: these models are too small to gain from more, and on a shared 2-core machine two threads made each
    # training step ~10x slower (0.4 s against 4 s per step, measured under load).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        texts = local_corpus(recipe.corpus_files)
        tokenizer = train_tokenizer(texts)
        token_ids = tokenizer("\n".join(texts), verbose=False)["input_ids"]
        models = {
            "target": _new_model(TARGET_SIZE, tokenizer, SEED),
            "draft": _new_model(DRAFT_SIZE, tokenizer, SEED + 1),
        }
        losses = _train(models, token_ids, recipe)
    finally:
        torch.set_num_threads(threads)
    with atomic_directory(dest, replace=True) as tmp:
        for name, model in models.items():
            model.save_pretrained(tmp / name)
            tokenizer.save_pretrained(tmp / name)
        (tmp / "tiny_pair.json").write_text(
            json.dumps({"key": key, "final_loss": losses, "corpus_tokens": len(token_ids), "recipe": asdict(recipe),
                        "build_seconds": round(time.perf_counter() - start, 1)}, indent=2)
        )


def build_tiny_pair(workdir: PathLike | None = None, recipe: TrainingRecipe | None = None, force: bool = False,
                    cache: PathLike | None = None) -> TinyPair:
    """Build (or reuse) the tiny tokenizer, target and draft as Hugging Face folders in ``<workdir>/tiny-hf``.

    Builds are keyed by their recipe and shared: the first one is written to ``<cache>/<key>`` (`cache` defaults to
    `settings.env_tiny_cache`: ``$TUTORIAL_TINY_CACHE``, else ``artifacts/tiny-cache`` in the repository), and every
    work folder gets a copy (a few MB), so the main job, the command line and the tests' temporary work folders train
    the pair once. Folders are written atomically and stamped with the key: a finished build with the same key is
    reused, a different or interrupted one is rebuilt.
    """
    recipe = recipe or TrainingRecipe()
    key = _recipe_key(recipe)
    root = resolve_workdir(workdir) / "tiny-hf"
    pair = TinyPair(root=root, target=root / "target", draft=root / "draft")
    if not force and _finished(root, key):
        return pair
    if root.exists() and not (root / "tiny_pair.json").is_file():  # only a folder stamped with our manifest is replaced
        raise ModelFolderError(f"{root} exists but was not built here (no tiny_pair.json): move it away, or use another "
                               "work folder (--workdir).")
    shared = (Path(cache).expanduser().resolve() if cache is not None else env_tiny_cache()) / key
    if force or not _finished(shared, key):
        _build(shared, recipe, key)
    with atomic_directory(root, replace=True) as tmp:
        copy_tree(shared, tmp)
    return pair
