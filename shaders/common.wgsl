// Shared helpers, prepended to every shader module by core/webgpu/runtime.ts.
// Conventions: @group(0) @binding(0) is the uniform parameter block; storage
// buffers follow at bindings 1, 2, ... in the order the host passes them.
//
// Only pure functions belong here. Helpers over workgroup memory (the
// `tree_sum` of reduce.wgsl and loss.wgsl) stay in their modules: they name
// the module's own `var<workgroup>` array, which WGSL cannot pass as an
// argument, and declaring the array here would add it to every module.

// Linear invocation id for dispatch1d: workgroups are folded into x and y.
fn linear_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32, wg_size: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * wg_size + lid;
}

// 32-bit integer hash shared with the CPU reference (core/cpu/hash.ts) for
// dropout masks: a pure function of (seed, element index).
fn hash_u32(seed: u32, i: u32) -> u32 {
  var h = (i * 0x9E3779B1u) ^ seed;
  h = h ^ (h >> 16u);
  h = h * 0x85EBCA6Bu;
  h = h ^ (h >> 13u);
  h = h * 0xC2B2AE35u;
  h = h ^ (h >> 16u);
  return h;
}

// Logistic sigmoid without overflow: exp of a non-positive argument only.
fn sigmoid(x: f32) -> f32 {
  if (x >= 0.0) {
    return 1.0 / (1.0 + exp(-x));
  }
  let e = exp(x);
  return e / (1.0 + e);
}
