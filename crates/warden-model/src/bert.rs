//! The encoder: a BERT of the all-MiniLM-L6-v2 shape, written on candle's tensors and layers.
//!
//! Why not `candle-transformers`: it carries a hundred model families, and building it
//! optimised (which the embedding needs even in test builds) cost more than ten minutes on
//! this project's 2-core machines; the encoder itself is sixty lines. The arithmetic is
//! the standard one (post-norm layers, exact erf GELU, additive attention mask), so the
//! embeddings match the reference implementation used by the training side to within float
//! rounding — a test checks that against a fixture that side produced.

use candle_core::{D, Module, Result, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder, embedding, layer_norm, linear};
use serde::Deserialize;

/// The fields of `config.json` the encoder reads.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Config {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    intermediate_size: usize,
    max_position_embeddings: usize,
    type_vocab_size: usize,
    layer_norm_eps: f64,
    hidden_act: String,
}

impl Config {
    /// Refuse a configuration this encoder does not implement.
    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        if self.hidden_act != "gelu" {
            return Err(format!("hidden_act {:?} is not supported", self.hidden_act));
        }
        if self.hidden_size != crate::EMBED_DIM {
            return Err(format!(
                "hidden_size {} is not {}",
                self.hidden_size,
                crate::EMBED_DIM
            ));
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err("num_attention_heads does not divide hidden_size".into());
        }
        if self.max_position_embeddings < crate::WINDOW || self.num_hidden_layers > 64 {
            return Err("the model is not of the expected shape".into());
        }
        Ok(())
    }
}

struct Layer {
    /// Query, key and value projections side by side: one product instead of three.
    qkv: Dense,
    attention_out: Dense,
    attention_norm: LayerNorm,
    intermediate: Dense,
    output: Dense,
    output_norm: LayerNorm,
}

/// The loaded encoder.
pub(crate) struct Bert {
    words: Embedding,
    positions: Embedding,
    types: Embedding,
    norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
}

impl Bert {
    pub(crate) fn load(vb: VarBuilder, c: &Config) -> Result<Bert> {
        let h = c.hidden_size;
        let e = vb.pp("embeddings");
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let a = l.pp("attention");
            layers.push(Layer {
                qkv: Dense::joined(&[
                    linear(h, h, a.pp("self.query"))?,
                    linear(h, h, a.pp("self.key"))?,
                    linear(h, h, a.pp("self.value"))?,
                ])?,
                attention_out: Dense::joined(&[linear(h, h, a.pp("output.dense"))?])?,
                attention_norm: layer_norm(h, c.layer_norm_eps, a.pp("output.LayerNorm"))?,
                intermediate: Dense::joined(&[linear(
                    h,
                    c.intermediate_size,
                    l.pp("intermediate.dense"),
                )?])?,
                output: Dense::joined(&[linear(c.intermediate_size, h, l.pp("output.dense"))?])?,
                output_norm: layer_norm(h, c.layer_norm_eps, l.pp("output.LayerNorm"))?,
            });
        }
        Ok(Bert {
            words: embedding(c.vocab_size, h, e.pp("word_embeddings"))?,
            positions: embedding(c.max_position_embeddings, h, e.pp("position_embeddings"))?,
            types: embedding(c.type_vocab_size, h, e.pp("token_type_embeddings"))?,
            norm: layer_norm(h, c.layer_norm_eps, e.pp("LayerNorm"))?,
            layers,
            heads: c.num_attention_heads,
        })
    }

    /// Hidden states `(batch, len, hidden)` for token ids `(batch, len)` and an additive
    /// attention mask `(batch, len)`: 0 for a token, −1e9 for padding.
    pub(crate) fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (batch, len) = ids.dims2()?;
        let positions = Tensor::arange(0u32, len as u32, ids.device())?;
        // Every token has type 0: its row is added to every token.
        let token_type = self.types.embeddings().narrow(0, 0, 1)?;
        let x = self.words.forward(ids)?;
        crate::kernels::add_cyclic_inplace(&x, &self.positions.forward(&positions)?)?;
        crate::kernels::add_cyclic_inplace(&x, &token_type)?;
        let mut x = self.norm.forward(&x)?;
        let hidden = x.dim(D::Minus1)?;
        let head_dim = hidden / self.heads;
        let scale = (1.0 / (head_dim as f64).sqrt()) as f32;
        // The heads in two groups, attended side by side (`rayon::join` in the model's pool:
        // a lone window's attention uses both cores; when the other core is busy with another
        // pass, both groups run here one after the other). Each head's arithmetic is the same
        // either way.
        let groups = if self.heads.is_multiple_of(2) { 2 } else { 1 };
        let per_group = self.heads / groups;
        let group_width = per_group * head_dim;
        let split = |t: Tensor| -> Result<Tensor> {
            t.reshape((batch, len, per_group, head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        for l in &self.layers {
            let qkv = l.qkv.forward(&x)?;
            let attend = |g: usize| -> Result<Tensor> {
                let at = |part: usize| {
                    qkv.narrow(D::Minus1, part * hidden + g * group_width, group_width)
                };
                let q = split(at(0)?)?;
                let k = split(at(1)?)?;
                let v = split(at(2)?)?;
                let probs = q.matmul(&k.t()?)?;
                crate::kernels::masked_softmax_inplace(&probs, mask, scale)?;
                probs
                    .matmul(&v)?
                    .transpose(1, 2)?
                    .contiguous()?
                    .reshape((batch, len, group_width))
            };
            let context = if groups == 2 {
                let (a, b) = rayon::join(|| attend(0), || attend(1));
                Tensor::cat(&[a?, b?], D::Minus1)?
            } else {
                attend(0)?
            };
            drop(qkv);
            let attended = l.attention_out.forward(&context)?;
            crate::kernels::add_cyclic_inplace(&attended, &x)?;
            let attended = l.attention_norm.forward(&attended)?;
            let inner = l.intermediate.forward(&attended)?;
            crate::kernels::gelu_erf_inplace(&inner)?;
            let out = l.output.forward(&inner)?;
            drop(inner);
            crate::kernels::add_cyclic_inplace(&out, &attended)?;
            x = l.output_norm.forward(&out)?;
        }
        Ok(x)
    }
}

/// Fewest rows in each half of a dense layer's product split over two threads (see
/// [`Dense::forward`]).
const SPLIT_ROWS: usize = 32;

/// A fully connected layer kept as `(in, out)` weights, transposed once at load: candle's
/// `Linear` multiplies by a transposed view of the `(out, in)` weights on every call, and the
/// matrix product then repacks them each time (profiled: a quarter of the forward pass went to
/// gemm's packing, beside its kernel). Several layers with the same input can be joined side by
/// side into one product.
struct Dense {
    weight: Tensor,
    bias: Tensor,
}

impl Dense {
    fn joined(parts: &[Linear]) -> Result<Dense> {
        let mut weights = Vec::with_capacity(parts.len());
        let mut biases = Vec::with_capacity(parts.len());
        for p in parts {
            weights.push(p.weight().t()?);
            match p.bias() {
                Some(b) => biases.push(b.clone()),
                None => candle_core::bail!("a dense layer of the encoder has no bias"),
            }
        }
        Ok(Dense {
            weight: Tensor::cat(&weights, 1)?.contiguous()?,
            bias: Tensor::cat(&biases, 0)?.contiguous()?,
        })
    }

    /// `(batch, len, in)` → `(batch, len, out)`, a fresh tensor (callers update it in place).
    ///
    /// The rows are multiplied in two halves side by side (`rayon::join` in the model's pool)
    /// once there are at least 2 × [`SPLIT_ROWS`]: a lone 128-token window then takes one
    /// join per product (24 a window) and both cores share it — 8.7 ms instead of 18 on a
    /// quiet machine — where gemm's own splitting woke the other thread ~100 times a window
    /// for no gain. Each output row is the same dot products in a half as in the whole, so
    /// the numbers do not change (`two_threads_embed_exactly_as_one`); with one thread, or
    /// the other core busy, the halves run one after the other.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (batch, len, width) = x.dims3()?;
        let out = self.weight.dim(1)?;
        let rows = batch * len;
        let x = x.reshape((rows, width))?;
        let y = if rows >= 2 * SPLIT_ROWS {
            let half = rows / 2;
            let (a, b) = rayon::join(
                || x.narrow(0, 0, half)?.matmul(&self.weight),
                || x.narrow(0, half, rows - half)?.matmul(&self.weight),
            );
            Tensor::cat(&[a?, b?], 0)?
        } else {
            x.matmul(&self.weight)?
        };
        crate::kernels::add_cyclic_inplace(&y, &self.bias)?;
        y.reshape((batch, len, out))
    }
}
