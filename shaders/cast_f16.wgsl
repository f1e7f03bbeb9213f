// f32 <-> f16 storage conversion (needs the shader-f16 feature; loaded and
// compiled only on devices that have it). One thread per element.
enable f16;

const WG: u32 = 256u;

struct CastParams {
  n: u32,
}

@group(0) @binding(0) var<uniform> P: CastParams;

@group(0) @binding(1) var<storage, read> F32_IN: array<f32>;
@group(0) @binding(2) var<storage, read_write> F16_OUT: array<f16>;

@compute @workgroup_size(WG)
fn f32_to_f16(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let i = linear_id(wid, nwg, li, WG);
  if (i < P.n) {
    F16_OUT[i] = f16(F32_IN[i]);
  }
}

@group(0) @binding(1) var<storage, read> F16_IN: array<f16>;
@group(0) @binding(2) var<storage, read_write> F32_OUT: array<f32>;

@compute @workgroup_size(WG)
fn f16_to_f32(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let i = linear_id(wid, nwg, li, WG);
  if (i < P.n) {
    F32_OUT[i] = f32(F16_IN[i]);
  }
}
