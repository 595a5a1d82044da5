//! Tokenization with the `tokenizers` crate from `tokenizer.json`, and batching.
//!
//! Padding is ours, not the tokenizer's: all-MiniLM's tokenizer.json switches fixed padding to
//! 128 on, so we turn it off and pad each batch ourselves — to its longest sentence (dynamic
//! padding, the default) or to `max_len` (what the notebook does) — with the model's
//! `pad_token_id` (config.json), as transformers' embeddings expect.
use serde_json::Value;
use tokenizers::{Tokenizer, TruncationParams};

use crate::{Error, Result};

pub struct TextEncoder {
    tokenizer: Tokenizer,
    max_len: usize,
    pad_id: u32,
}

/// Token ids of one batch, padded to a common length, ready for the model.
#[derive(Clone)]
pub struct Batch {
    /// (batch × seq) token ids, row-major.
    pub ids: Vec<u32>,
    /// (batch × seq): 1 for real tokens, 0 for padding.
    pub mask: Vec<f32>,
    pub size: usize,
    pub seq_len: usize,
}

impl TextEncoder {
    pub fn from_bytes(tokenizer_json: &[u8], max_len: usize, pad_id: u32) -> Result<Self> {
        if max_len < 2 {
            return Err(Error::Options(format!("max_len {max_len} is too small: at least 2 ([CLS] and [SEP])")));
        }
        // The tokenizers crate panics, instead of failing, on a JSON error inside "decoder" (a
        // raw control character or a byte that is not UTF-8 in a string, say): parse the whole
        // file as JSON first (skipping strings unread, as serde's IgnoredAny does, misses those).
        let value = serde_json::from_slice::<Value>(tokenizer_json)
            .map_err(|e| Error::Tokenizer(format!("tokenizer.json is not valid JSON: {e}")))?;
        if let Some(post_processor) = value.get("post_processor") {
            check_templates(post_processor)?;
        }
        let mut tokenizer = Tokenizer::from_bytes(tokenizer_json)
            .map_err(|e| Error::Tokenizer(format!("tokenizer.json could not be read: {e}")))?;
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).map_err(|e| Error::Tokenizer(e.to_string()))?;
        check_cls_sep(&tokenizer, tokenizer_json)?;
        tokenizer
            .with_truncation(Some(TruncationParams { max_length: max_len, ..Default::default() }))
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(TextEncoder { tokenizer, max_len, pad_id })
    }

    /// The longest sequence, in tokens ([CLS] and [SEP] included), this encoder produces.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Token ids with [CLS]/[SEP] added, truncated to `max_len`, unpadded. A text with no
    /// token besides [CLS] and [SEP] (empty after normalization, e.g. only a zero-width space)
    /// is refused: there is nothing in it to classify.
    pub fn encode_ids(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| Error::Tokenizer(format!("could not tokenize {}: {e}", quoted(text))))?;
        let words_kept = encoding.get_special_tokens_mask().iter().any(|&special| special == 0);
        if !words_kept && encoding.get_overflowing().is_empty() {
            return Err(Error::Tokenizer(format!(
                "the sentence {} has no words the tokenizer keeps (only spaces, control or zero-width characters): remove it or give it some text",
                quoted(text)
            )));
        }
        Ok(encoding.get_ids().to_vec())
    }

    /// [`TextEncoder::encode_ids`] of each text; an error names the sentence's position.
    pub fn encode_all(&self, texts: &[String]) -> Result<Vec<Vec<u32>>> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                self.encode_ids(t).map_err(|e| match e {
                    Error::Tokenizer(message) => Error::Tokenizer(format!("sentence {} of {}: {message}", i + 1, texts.len())),
                    other => other,
                })
            })
            .collect()
    }

    /// Pad already-encoded sentences into one batch: to the longest one, or to `max_len`.
    pub fn batch(&self, sequences: &[&[u32]], pad_to_max_len: bool) -> Batch {
        let longest = sequences.iter().map(|s| s.len()).max().unwrap_or(0);
        let seq_len = if pad_to_max_len { self.max_len } else { longest };
        let mut ids = Vec::with_capacity(sequences.len() * seq_len);
        let mut mask = Vec::with_capacity(sequences.len() * seq_len);
        for seq in sequences {
            ids.extend_from_slice(seq);
            ids.extend(std::iter::repeat_n(self.pad_id, seq_len - seq.len()));
            mask.extend(std::iter::repeat_n(1f32, seq.len()));
            mask.extend(std::iter::repeat_n(0f32, seq_len - seq.len()));
        }
        Batch { ids, mask, size: sequences.len(), seq_len }
    }
}

/// A text for a message: quoted with escapes (so invisible characters show), at most 60
/// characters.
fn quoted(text: &str) -> String {
    const MAX: usize = 60;
    let short: String = text.chars().take(MAX).collect();
    let more = if text.chars().nth(MAX).is_some() { "…" } else { "" };
    format!("{short:?}{more}")
}

/// Refuses a `TemplateProcessing` post-processor (also inside a `Sequence`) whose template
/// names a special token its `special_tokens` does not define, or defines one with a different
/// number of ids and tokens: the tokenizers crate reads that file, then panics on every encode.
fn check_templates(post_processor: &Value) -> Result<()> {
    // By shape, not by "type": the tokenizers crate also reads an object whose "type" is missing
    // or misspelt as a template when it has a template's fields.
    let is_template = ["single", "pair", "special_tokens"].iter().any(|field| post_processor.get(field).is_some());
    match post_processor.get("type").and_then(Value::as_str) {
        Some("Sequence") => {
            for inner in post_processor.get("processors").and_then(Value::as_array).into_iter().flatten() {
                check_templates(inner)?;
            }
            Ok(())
        }
        _ if is_template => {
            let defined = post_processor.get("special_tokens").and_then(Value::as_object);
            for (id, token) in defined.into_iter().flatten() {
                let count = |field: &str| token.get(field).and_then(Value::as_array).map(Vec::len);
                if count("ids") != count("tokens") {
                    return Err(Error::Tokenizer(format!(
                        "tokenizer.json's post_processor defines the special token {id:?} with a different number of ids and tokens: use the tokenizer.json that came with the checkpoint"
                    )));
                }
            }
            let pieces = ["single", "pair"].into_iter().filter_map(|t| post_processor.get(t).and_then(Value::as_array)).flatten();
            for piece in pieces {
                let Some(id) = piece.get("SpecialToken").and_then(|t| t.get("id")).and_then(Value::as_str) else { continue };
                if !defined.is_some_and(|d| d.contains_key(id)) {
                    return Err(Error::Tokenizer(format!(
                        "tokenizer.json's post_processor template uses the special token {id:?}, which its special_tokens does not define: use the tokenizer.json that came with the checkpoint"
                    )));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Refuses a tokenizer that does not wrap a sentence in [CLS] … [SEP] (or other special tokens,
/// RoBERTa's <s> … </s>): the pooler (and so the classifier) reads the first token, which without
/// [CLS] would silently be the first word.
fn check_cls_sep(tokenizer: &Tokenizer, tokenizer_json: &[u8]) -> Result<()> {
    let cls_sep = tokenizer.token_to_id("[CLS]").zip(tokenizer.token_to_id("[SEP]"));
    let probe = tokenizer.encode("a", true).ok();
    let ids = probe.as_ref().map(|e| e.get_ids());
    let bert_wrapped = match (cls_sep, ids) {
        (Some((cls, sep)), Some(ids)) => ids.len() >= 3 && ids[0] == cls && ids[ids.len() - 1] == sep,
        _ => false,
    };
    // RoBERTa's <s> … </s> (any post-processor's special tokens around the sentence).
    let special = probe.as_ref().map(|e| e.get_special_tokens_mask());
    let specials_wrap = special.is_some_and(|m| m.len() >= 3 && m[0] == 1 && m[m.len() - 1] == 1 && m[1] == 0);
    let wrapped = bert_wrapped || specials_wrap;
    if wrapped {
        return Ok(());
    }
    let post_processor = serde_json::from_slice::<Value>(tokenizer_json)
        .ok()
        .and_then(|v| v.get("post_processor").cloned())
        .map(|p| match p.get("type").and_then(Value::as_str) {
            Some(kind) => format!("a {kind}"),
            None if p.is_null() => "none".to_string(),
            None => "not a known kind".to_string(),
        })
        .unwrap_or_else(|| "none".to_string());
    Err(Error::Tokenizer(format!(
        "tokenizer.json does not put [CLS] before and [SEP] after a sentence (its post_processor is {post_processor}): \
         BERT's classifier reads the first token, which would then be the sentence's first word. Use the tokenizer.json that \
         came with the checkpoint, or set its post_processor to {{\"type\": \"BertProcessing\", \"cls\": [\"[CLS]\", CLS_ID], \"sep\": [\"[SEP]\", SEP_ID]}}"
    )))
}

/// The truncation length a tokenizer.json declares (`truncation.max_length`), if any. A webtune
/// export records the max length its model was trained with there.
pub fn declared_max_len(tokenizer_json: &[u8]) -> Option<usize> {
    let value: Value = serde_json::from_slice(tokenizer_json).ok()?;
    value.get("truncation")?.get("max_length")?.as_u64().map(|n| n as usize)
}

/// tokenizer.json with truncation set to `max_len` (tokens), so that transformers and a later
/// `webtune predict` cut inputs where training did.
pub fn with_declared_max_len(tokenizer_json: &[u8], max_len: usize) -> Result<Vec<u8>> {
    let mut value: Value =
        serde_json::from_slice(tokenizer_json).map_err(|e| Error::Tokenizer(format!("tokenizer.json is not valid JSON: {e}")))?;
    let object = value.as_object_mut().ok_or_else(|| Error::Tokenizer("tokenizer.json is not a JSON object".into()))?;
    match object.get_mut("truncation").and_then(Value::as_object_mut) {
        Some(truncation) => {
            truncation.insert("max_length".into(), max_len.into());
        }
        None => {
            object.insert(
                "truncation".into(),
                serde_json::json!({"direction": "Right", "max_length": max_len, "strategy": "LongestFirst", "stride": 0}),
            );
        }
    }
    serde_json::to_vec(&value).map_err(|e| Error::Tokenizer(e.to_string()))
}
