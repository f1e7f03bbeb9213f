// Fills a buffer with one 32-bit pattern (an f32, an i32, or two f16 halves).

struct FillParams {
  words: u32,
  bits: u32,
}

@group(0) @binding(0) var<uniform> params: FillParams;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(256)
fn fill(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = linear_id(wid, nwg, lid, 256u);
  if (i < params.words) {
    out[i] = params.bits;
  }
}
