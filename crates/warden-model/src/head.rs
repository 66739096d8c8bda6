//! Classifier heads: a small dense network over one embedding, read from the head format the
//! training pipeline writes (`heads/{tools,texts}.json`).
//!
//! Plain Rust, not candle: a head is a few thousand multiply-adds per window, less than the cost
//! of building a tensor for it. Every dimension is checked when the head is read, so running it
//! cannot index out of bounds or meet a NaN weight.

use serde::Deserialize;

use crate::error::ModelError;
use crate::{EMBED_DIM, MODEL_NAME, STRIDE, WINDOW};

/// Most layers a head may have.
const MAX_LAYERS: usize = 8;
/// Widest layer a head may have.
const MAX_WIDTH: usize = 4096;

/// What a head classifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadKind {
    /// Tool metadata (a tool card: name, title, description, parameters).
    Tools,
    /// Texts the agent reads: tool outputs, files, web pages, emails.
    Texts,
}

impl HeadKind {
    /// `tools` or `texts`.
    pub fn as_str(self) -> &'static str {
        match self {
            HeadKind::Tools => "tools",
            HeadKind::Texts => "texts",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Activation {
    Relu,
    None,
}

#[derive(Deserialize)]
struct LayerFile {
    weight: Vec<Vec<f32>>,
    bias: Vec<f32>,
    activation: Activation,
}

#[derive(Deserialize)]
struct HeadFile {
    model: String,
    model_sha256: String,
    kind: HeadKind,
    layers: Vec<LayerFile>,
    output: String,
    threshold: f64,
    window: usize,
    stride: usize,
    #[serde(default)]
    trained_on: Vec<String>,
    #[serde(default)]
    held_out: Vec<String>,
}

#[derive(Debug, Clone)]
struct Layer {
    /// Row-major, `out × input`.
    weight: Vec<f32>,
    bias: Vec<f32>,
    input: usize,
    relu: bool,
}

/// A classifier head, checked and ready to run.
#[derive(Debug, Clone)]
pub struct Head {
    kind: HeadKind,
    model_sha256: String,
    layers: Vec<Layer>,
    threshold: f32,
    trained_on: Vec<String>,
    held_out: Vec<String>,
}

impl Head {
    /// Read a head from its JSON, checking that it fits this model and is well formed.
    pub fn from_json(json: &str) -> Result<Head, ModelError> {
        let bad = |message: String| ModelError::Head {
            what: "head".to_owned(),
            message,
        };
        let file: HeadFile = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
        let bad = |message: String| ModelError::Head {
            what: file.kind.as_str().to_owned(),
            message,
        };
        if file.model != MODEL_NAME {
            return Err(bad(format!(
                "made for model {:?}, this is {MODEL_NAME}",
                file.model
            )));
        }
        if file.output != "sigmoid" {
            return Err(bad(format!(
                "output {:?} is not supported (only \"sigmoid\")",
                file.output
            )));
        }
        if file.window != WINDOW || file.stride != STRIDE {
            return Err(bad(format!(
                "trained on windows of {} with stride {}, this runtime uses {WINDOW} and {STRIDE}",
                file.window, file.stride
            )));
        }
        if !(file.threshold.is_finite() && (0.0..=1.0).contains(&file.threshold)) {
            return Err(bad(format!(
                "threshold {} is not in [0, 1]",
                file.threshold
            )));
        }
        if file.layers.is_empty() || file.layers.len() > MAX_LAYERS {
            return Err(bad(format!(
                "{} layers (1 to {MAX_LAYERS} allowed)",
                file.layers.len()
            )));
        }
        let mut input = EMBED_DIM;
        let mut layers = Vec::with_capacity(file.layers.len());
        for (i, l) in file.layers.into_iter().enumerate() {
            let out = l.weight.len();
            if out == 0 || out > MAX_WIDTH {
                return Err(bad(format!(
                    "layer {i} has {out} outputs (1 to {MAX_WIDTH} allowed)"
                )));
            }
            if l.bias.len() != out {
                return Err(bad(format!(
                    "layer {i} has {out} weight rows but {} biases",
                    l.bias.len()
                )));
            }
            let mut weight = Vec::with_capacity(out * input);
            for (r, row) in l.weight.into_iter().enumerate() {
                if row.len() != input {
                    return Err(bad(format!(
                        "layer {i} row {r} has {} inputs, expected {input}",
                        row.len()
                    )));
                }
                weight.extend(row);
            }
            if !weight.iter().chain(&l.bias).all(|v| v.is_finite()) {
                return Err(bad(format!("layer {i} has a weight that is not finite")));
            }
            layers.push(Layer {
                weight,
                bias: l.bias,
                input,
                relu: l.activation == Activation::Relu,
            });
            input = out;
        }
        if input != 1 {
            return Err(bad(format!(
                "the last layer has {input} outputs, expected 1"
            )));
        }
        Ok(Head {
            kind: file.kind,
            model_sha256: file.model_sha256,
            layers,
            threshold: file.threshold as f32,
            trained_on: file.trained_on,
            held_out: file.held_out,
        })
    }

    /// What the head classifies.
    pub fn kind(&self) -> HeadKind {
        self.kind
    }

    /// The flagging threshold on the sigmoid score (chosen on validation data).
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// SHA-256 of the weights the head was trained on.
    pub fn model_sha256(&self) -> &str {
        &self.model_sha256
    }

    /// Sources the head was trained on, and sources held out for evaluation.
    pub fn sources(&self) -> (&[String], &[String]) {
        (&self.trained_on, &self.held_out)
    }

    /// The score of one embedding, in [0, 1].
    pub fn score(&self, embedding: &[f32; EMBED_DIM]) -> f32 {
        let mut x: Vec<f32> = embedding.to_vec();
        for layer in &self.layers {
            let mut y = layer.bias.clone();
            for (o, row) in y.iter_mut().zip(layer.weight.chunks_exact(layer.input)) {
                *o += row.iter().zip(&x).map(|(w, v)| w * v).sum::<f32>();
                if layer.relu && *o < 0.0 {
                    *o = 0.0;
                }
            }
            x = y;
        }
        let logit = x.first().copied().unwrap_or(f32::NEG_INFINITY);
        1.0 / (1.0 + (-logit).exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn head(layers: serde_json::Value) -> serde_json::Value {
        json!({"model": MODEL_NAME, "model_sha256": crate::MODEL_SHA256, "kind": "texts",
               "layers": layers, "output": "sigmoid", "threshold": 0.5, "window": 128,
               "stride": 64, "trained_on": ["a"], "held_out": ["b"]})
    }

    #[test]
    fn a_linear_head_computes_the_sigmoid_of_its_dot_product() {
        let mut w = vec![0.0f32; EMBED_DIM];
        w[0] = 2.0;
        w[1] = -1.0;
        let h = Head::from_json(
            &head(json!([{"weight": [w], "bias": [0.5], "activation": "none"}])).to_string(),
        )
        .expect("valid head");
        let mut e = [0f32; EMBED_DIM];
        e[0] = 1.0;
        e[1] = 1.0;
        let expected = 1.0 / (1.0 + (-1.5f32).exp());
        assert!((h.score(&e) - expected).abs() < 1e-6);
        assert_eq!(h.kind(), HeadKind::Texts);
    }

    #[test]
    fn relu_clamps_hidden_units() {
        let w1 = vec![vec![-1.0f32; EMBED_DIM]; 2];
        let h = Head::from_json(
            &head(json!([
                {"weight": w1, "bias": [0.0, 0.0], "activation": "relu"},
                {"weight": [[5.0, 5.0]], "bias": [0.0], "activation": "none"}
            ]))
            .to_string(),
        )
        .expect("valid head");
        // Every hidden unit is negative before the relu, so the logit is 0.
        assert!((h.score(&[1.0; EMBED_DIM]) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn malformed_heads_are_refused_with_the_reason() {
        let row = vec![0.0f32; EMBED_DIM];
        let cases = [
            (head(json!([])), "0 layers"),
            (
                head(json!([{"weight": [[0.0, 1.0]], "bias": [0.0], "activation": "none"}])),
                "row 0 has 2 inputs",
            ),
            (
                head(
                    json!([{"weight": [row.clone(), row.clone()], "bias": [0.0, 0.0], "activation": "none"}]),
                ),
                "last layer has 2 outputs",
            ),
            (
                head(json!([{"weight": [row.clone()], "bias": [], "activation": "none"}])),
                "0 biases",
            ),
            (
                head(json!([{"weight": [row.clone()], "bias": [0.0], "activation": "tanh"}])),
                "unknown variant",
            ),
        ];
        for (json, expected) in cases {
            let err = Head::from_json(&json.to_string()).expect_err("must be refused");
            assert!(
                err.to_string().contains(expected),
                "{err} lacks {expected:?}"
            );
        }
        let mut wrong =
            head(json!([{"weight": [row.clone()], "bias": [0.0], "activation": "none"}]));
        wrong["window"] = json!(256);
        assert!(Head::from_json(&wrong.to_string()).is_err());
        wrong["window"] = json!(128);
        wrong["threshold"] = json!(1.5);
        assert!(Head::from_json(&wrong.to_string()).is_err());
        wrong["threshold"] = json!(0.5);
        wrong["model"] = json!("bge-small");
        assert!(Head::from_json(&wrong.to_string()).is_err());
    }
}
