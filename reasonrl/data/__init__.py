"""reasonrl data: tokenizers, chat templates, record sources and grain training pipelines.

Typical use:

    tokenizer = load_tokenizer("runs/demo/tokenizer")         # dir, .model or tokenizer.json
    check_spec(spec, tokenizer)        # a bad spec, empty file or first record fails now
    batches = make_pipeline(spec, tokenizer, batch_size=8, seq_len=512, seed=0)
    batch = next(batches)   # dict of int32 [8, 512]: tokens, targets, loss_mask,
                            #                         segment_ids, positions
                            # (task "preference": one pair a row, see PairPacker)
    saved = iterator_state_to_bytes(batches)                # store with the model checkpoint
    restore_iterator_state(batches, saved)                  # ... and resume exactly there
"""

from reasonrl.data.packing import (
    PACKERS,
    PAIR_ROW_FEATURES,
    ROW_FEATURES,
    ConcatThenSplitIterDataset,
)
from reasonrl.data.pipeline import (
    PipelineConfig,
    check_spec,
    iterator_state_to_bytes,
    make_dataset,
    make_pipeline,
    restore_iterator_state,
)
from reasonrl.data.sources import (
    SOURCE_TYPES,
    ArrayRecordSource,
    JsonlSource,
    MalformedRecordError,
    MalformedRecordWarning,
    MissingFieldError,
    RecordSource,
    TextSource,
    TfdsSource,
    make_source,
)
from reasonrl.data.spec import SpecError
from reasonrl.data.tasks import (
    PAIR_SIDES,
    TASK_TYPES,
    PreferenceTask,
    PretrainTask,
    SftTask,
    next_token_features,
)
from reasonrl.data.tokenizer import (
    CHAT_SPECIAL_TOKENS,
    CHAT_TEMPLATES,
    ChatTemplate,
    HFTokenizer,
    MissingSpecialTokenError,
    RenderedChat,
    SentencePieceTokenizer,
    Tokenizer,
    get_chat_template,
    load_tokenizer,
    train_sentencepiece,
)

__all__ = [
    "CHAT_SPECIAL_TOKENS",
    "CHAT_TEMPLATES",
    "PACKERS",
    "PAIR_ROW_FEATURES",
    "PAIR_SIDES",
    "ROW_FEATURES",
    "SOURCE_TYPES",
    "TASK_TYPES",
    "ArrayRecordSource",
    "ChatTemplate",
    "ConcatThenSplitIterDataset",
    "HFTokenizer",
    "JsonlSource",
    "MalformedRecordError",
    "MalformedRecordWarning",
    "MissingFieldError",
    "MissingSpecialTokenError",
    "PipelineConfig",
    "PreferenceTask",
    "PretrainTask",
    "RecordSource",
    "RenderedChat",
    "SentencePieceTokenizer",
    "SftTask",
    "SpecError",
    "TextSource",
    "TfdsSource",
    "Tokenizer",
    "check_spec",
    "get_chat_template",
    "iterator_state_to_bytes",
    "load_tokenizer",
    "make_dataset",
    "make_pipeline",
    "make_source",
    "next_token_features",
    "restore_iterator_state",
    "train_sentencepiece",
]
