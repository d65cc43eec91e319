//! SiLU as a candle custom op with a vectorised f32 kernel ([`crate::numerics::silu_f32`]).
//!
//! candle's built-in `silu` calls libm's `expf` per element; on this network that is most of the
//! elementwise cost of a training step. The op here computes the same function (to 1e-6) and its
//! backward pass `g · σ(x)(1 + x(1 − σ(x)))` in one fused loop each.

use crate::numerics::{silu_f32, silu_grad_f32};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};

/// `x σ(x)` with a fused backward pass.
pub fn silu(x: &Tensor) -> Result<Tensor> {
    x.apply_op1(Silu)
}

struct Silu;
struct SiluBackward;

fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(v) = s else {
        candle_core::bail!("{op}: only f32 tensors are supported");
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("{op}: input must be contiguous"),
    }
}

impl CustomOp1 for Silu {
    fn name(&self) -> &'static str {
        "silu-f32"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, self.name())?;
        let y: Vec<f32> = x.iter().map(|&v| silu_f32(v)).collect();
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            arg.apply_op2_no_bwd(&grad.contiguous()?, &SiluBackward)?,
        ))
    }
}

impl CustomOp2 for SiluBackward {
    fn name(&self) -> &'static str {
        "silu-f32-backward"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s1, l1, self.name())?;
        let g = f32_slice(s2, l2, self.name())?;
        let y: Vec<f32> = x
            .iter()
            .zip(g)
            .map(|(&x, &g)| g * silu_grad_f32(x))
            .collect();
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }
}
