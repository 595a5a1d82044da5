//! What a run gives back: its model (for predictions) and the trained model's files —
//! transformers' `…ForSequenceClassification` (BERT, DistilBERT, RoBERTa), and PEFT's adapter
//! folder for a LoRA run.
use candle_core::Tensor;

use super::Run;
use crate::model;
use crate::run_model::RunModel;
use crate::types::{ExportedModel, Prediction};
use crate::events::Event;
use crate::{Error, Result};

impl Run {
    /// Names of the parameters this run trains (transformers names).
    pub fn trainable_names(&self) -> Vec<String> {
        self.model.params.iter().map(|p| p.name.clone()).collect()
    }

    /// Every tensor of the current model with its transformers name (`bert.…`, `classifier.…`).
    pub fn named_tensors(&self) -> Result<Vec<(String, Tensor)>> {
        self.model.named_tensors()
    }

    /// The run's model: its weights (trained and shared), adapters and head.
    pub fn model(&self) -> &RunModel {
        &self.model
    }

    /// Class probabilities of new texts with the current weights (eval mode), truncated at the
    /// run's max length.
    pub fn predict(&self, texts: &[String]) -> Result<Vec<Prediction>> {
        self.refuse_if_failed("predict with")?;
        model::predict_with(&self.config, &self.model.weights, self.model.adapters.as_ref(), &self.model.head, &self.labels, &self.encoder, texts)
    }

    /// The current model as transformers' `…ForSequenceClassification` files.
    pub fn export(&self) -> Result<ExportedModel> {
        self.refuse_if_failed("export")?;
        crate::checkpoint::export_classifier(&self.config_json, &self.tokenizer_json, &self.labels, self.options.max_len, &self.named_tensors()?)
    }

    /// A LoRA run's PEFT adapter folder: (`adapter_config.json`, `adapter_model.safetensors`);
    /// None for other strategies.
    pub fn export_adapter(&self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.refuse_if_failed("export")?;
        let Some(adapters) = &self.model.adapters else { return Ok(None) };
        let base = self.config_json.get("_name_or_path").and_then(|v| v.as_str()).filter(|s| !s.is_empty());
        Ok(Some(crate::lora::peft_adapter_files(adapters, &self.options.lora, &self.model.head_tensors()?, base, self.model.architecture)?))
    }

    /// A run that failed (e.g. its weights became NaN) has no model to use.
    fn refuse_if_failed(&self, what: &str) -> Result<()> {
        match &self.done_event {
            Some(Event::Error { message }) => Err(Error::Options(format!("cannot {what} this model: {message}; train it again"))),
            _ => Ok(()),
        }
    }
}
