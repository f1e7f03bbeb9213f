// Element-wise kernels: binary ops with broadcasting, unary functions and
// their derivatives, and inverted dropout, dispatched with dispatch1d
// (workgroups folded into x and y, see linear_id).
//
// Each kernel has a vec4 entry (suffix 4: one thread per four elements, vec4
// loads and stores) and a scalar one. The vec4 entries may read and write
// past element n up to the end of the last vec4: the host uses them only on
// buffers whose size is a multiple of 16 bytes (every pooled buffer but a
// binding-limit-sized one), where that tail is padding no storage uses.
//
// Op codes (override OP), shared with core/webgpu/kernels_elementwise.ts:
//   binary: 0 add, 1 sub, 2 mul, 3 div
//   unary:  0 relu, 1 leaky_relu, 2 gelu (tanh approximation), 3 sigmoid,
//           4 tanh, 5 exp, 6 log, 7 neg, 8 abs, 9 sqrt, 10 affine
// Broadcast modes (A_MODE, B_MODE): 0 full, 1 row, 2 col, 3 scalar.

override OP: u32 = 0u;
override A_MODE: u32 = 0u;
override B_MODE: u32 = 0u;

const WG: u32 = 256u;
const GELU_C: f32 = 0.7978845608028654; // sqrt(2 / pi)
const GELU_K: f32 = 0.044715;

// ---- binary -------------------------------------------------------------------

struct BinaryParams {
  n: u32,
  cols: u32,
}

@group(0) @binding(0) var<uniform> PB: BinaryParams;
@group(0) @binding(1) var<storage, read> BA: array<f32>;
@group(0) @binding(2) var<storage, read> BB: array<f32>;
@group(0) @binding(3) var<storage, read_write> BOUT: array<f32>;

// Index of an operand with broadcast `mode` for output element i of a rows×cols grid.
fn operand_index(mode: u32, i: u32, cols: u32) -> u32 {
  switch mode {
    case 0u: {
      return i;
    }
    case 1u: {
      return i % cols;
    }
    case 2u: {
      return i / cols;
    }
    default: {
      return 0u;
    }
  }
}

@compute @workgroup_size(WG)
fn binary(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let i = linear_id(wid, nwg, li, WG);
  if (i >= PB.n) {
    return;
  }
  let a = BA[operand_index(A_MODE, i, PB.cols)];
  let b = BB[operand_index(B_MODE, i, PB.cols)];
  var r: f32;
  switch OP {
    case 0u: {
      r = a + b;
    }
    case 1u: {
      r = a - b;
    }
    case 2u: {
      r = a * b;
    }
    default: {
      r = a / b;
    }
  }
  BOUT[i] = r;
}

@group(0) @binding(1) var<storage, read> BA4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> BB4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> BOUT4: array<vec4<f32>>;

// For output elements 4g..4g+3 of an operand with broadcast `mode`: the vec4
// index (full, row) or the scalar index (col, scalar) to read. Needs
// cols % 4 == 0 unless the mode is full or scalar, so that the four share a row.
fn operand_index4(mode: u32, g: u32, cols: u32) -> u32 {
  switch mode {
    case 0u: {
      return g;
    }
    case 1u: {
      return ((g * 4u) % cols) / 4u;
    }
    case 2u: {
      return (g * 4u) / cols;
    }
    default: {
      return 0u;
    }
  }
}

fn load_a4(g: u32) -> vec4<f32> {
  let j = operand_index4(A_MODE, g, PB.cols);
  if (A_MODE <= 1u) {
    return BA4[j];
  }
  return vec4<f32>(BA4[j / 4u][j % 4u]);
}

fn load_b4(g: u32) -> vec4<f32> {
  let j = operand_index4(B_MODE, g, PB.cols);
  if (B_MODE <= 1u) {
    return BB4[j];
  }
  return vec4<f32>(BB4[j / 4u][j % 4u]);
}

@compute @workgroup_size(WG)
fn binary4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let g = linear_id(wid, nwg, li, WG);
  if (g * 4u >= PB.n) {
    return;
  }
  let a = load_a4(g);
  let b = load_b4(g);
  var r: vec4<f32>;
  switch OP {
    case 0u: {
      r = a + b;
    }
    case 1u: {
      r = a - b;
    }
    case 2u: {
      r = a * b;
    }
    default: {
      r = a / b;
    }
  }
  BOUT4[g] = r;
}

// ---- unary --------------------------------------------------------------------

struct UnaryParams {
  n: u32,
  alpha: f32,
  beta: f32,
}

@group(0) @binding(0) var<uniform> PU: UnaryParams;
@group(0) @binding(1) var<storage, read> UX: array<f32>;
@group(0) @binding(2) var<storage, read_write> UOUT: array<f32>;

// tanh with full relative accuracy near 0 and no overflow for large |x|
// (the builtin may be (e^2x - 1)/(e^2x + 1), which loses both).
fn tanh_safe(x: f32) -> f32 {
  let a = abs(x);
  if (a < 0.0625) {
    let x2 = x * x;
    return x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0))));
  }
  let e = exp(-2.0 * min(a, 20.0));
  return sign(x) * (1.0 - e) / (1.0 + e);
}

fn gelu_inner(x: f32) -> f32 {
  return GELU_C * (x + GELU_K * x * x * x);
}

fn unary_fn(x: f32, alpha: f32, beta: f32) -> f32 {
  switch OP {
    case 0u: {
      return select(0.0, x, x > 0.0);
    }
    case 1u: {
      return select(alpha * x, x, x > 0.0);
    }
    case 2u: {
      return 0.5 * x * (1.0 + tanh_safe(gelu_inner(x)));
    }
    case 3u: {
      return sigmoid(x);
    }
    case 4u: {
      return tanh_safe(x);
    }
    case 5u: {
      return exp(x);
    }
    case 6u: {
      return log(x);
    }
    case 7u: {
      return -x;
    }
    case 8u: {
      return abs(x);
    }
    case 9u: {
      return sqrt(x);
    }
    default: {
      return alpha * x + beta;
    }
  }
}

@compute @workgroup_size(WG)
fn unary(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let i = linear_id(wid, nwg, li, WG);
  if (i >= PU.n) {
    return;
  }
  UOUT[i] = unary_fn(UX[i], PU.alpha, PU.beta);
}

@group(0) @binding(1) var<storage, read> UX4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> UOUT4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn unary4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let g = linear_id(wid, nwg, li, WG);
  if (g * 4u >= PU.n) {
    return;
  }
  let x = UX4[g];
  let a = PU.alpha;
  let b = PU.beta;
  UOUT4[g] = vec4<f32>(unary_fn(x.x, a, b), unary_fn(x.y, a, b), unary_fn(x.z, a, b), unary_fn(x.w, a, b));
}

// ---- unary gradient -------------------------------------------------------------

@group(0) @binding(1) var<storage, read> GX: array<f32>;
@group(0) @binding(2) var<storage, read> GY: array<f32>;
@group(0) @binding(3) var<storage, read> GDY: array<f32>;
@group(0) @binding(4) var<storage, read_write> GOUT: array<f32>;

// dy·f'(x), given x, y = f(x) and dy.
fn unary_grad_fn(x: f32, y: f32, dy: f32, alpha: f32) -> f32 {
  switch OP {
    case 0u: {
      return select(0.0, dy, x > 0.0);
    }
    case 1u: {
      return select(alpha * dy, dy, x > 0.0);
    }
    case 2u: {
      let t = tanh_safe(gelu_inner(x));
      let dinner = GELU_C * (1.0 + 3.0 * GELU_K * x * x);
      return dy * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * dinner);
    }
    case 3u: {
      return dy * y * (1.0 - y);
    }
    case 4u: {
      return dy * (1.0 - y * y);
    }
    case 5u: {
      return dy * y;
    }
    case 6u: {
      return dy / x;
    }
    case 7u: {
      return -dy;
    }
    case 8u: {
      return dy * sign(x);
    }
    case 9u: {
      return dy * 0.5 / y;
    }
    default: {
      return dy * alpha;
    }
  }
}

@compute @workgroup_size(WG)
fn unary_grad(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let i = linear_id(wid, nwg, li, WG);
  if (i >= PU.n) {
    return;
  }
  GOUT[i] = unary_grad_fn(GX[i], GY[i], GDY[i], PU.alpha);
}

@group(0) @binding(1) var<storage, read> GX4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> GY4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> GDY4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> GOUT4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn unary_grad4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let g = linear_id(wid, nwg, li, WG);
  if (g * 4u >= PU.n) {
    return;
  }
  let x = GX4[g];
  let y = GY4[g];
  let dy = GDY4[g];
  let a = PU.alpha;
  GOUT4[g] = vec4<f32>(
    unary_grad_fn(x.x, y.x, dy.x, a),
    unary_grad_fn(x.y, y.y, dy.y, a),
    unary_grad_fn(x.z, y.z, dy.z, a),
    unary_grad_fn(x.w, y.w, dy.w, a),
  );
}

// ---- dropout --------------------------------------------------------------------

struct DropoutParams {
  n: u32,
  seed: u32,
  // keep element i iff hash_u32(seed, i) >= threshold, threshold = ceil(p * 2^32):
  // the exact integer form of hash / 2^32 >= p.
  threshold: u32,
  // 1 / (1 - p), or 0 when nothing is kept (threshold would be 2^32).
  scale: f32,
}

@group(0) @binding(0) var<uniform> PD: DropoutParams;
@group(0) @binding(1) var<storage, read> DX: array<f32>;
@group(0) @binding(2) var<storage, read_write> DOUT: array<f32>;

@compute @workgroup_size(WG)
fn dropout(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let i = linear_id(wid, nwg, li, WG);
  if (i >= PD.n) {
    return;
  }
  let keep = hash_u32(PD.seed, i) >= PD.threshold;
  DOUT[i] = select(0.0, DX[i] * PD.scale, keep);
}

@group(0) @binding(1) var<storage, read> DX4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> DOUT4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn dropout4(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) li: u32,
) {
  let g = linear_id(wid, nwg, li, WG);
  let i = g * 4u;
  if (i >= PD.n) {
    return;
  }
  let keep = vec4<bool>(
    hash_u32(PD.seed, i) >= PD.threshold,
    hash_u32(PD.seed, i + 1u) >= PD.threshold,
    hash_u32(PD.seed, i + 2u) >= PD.threshold,
    hash_u32(PD.seed, i + 3u) >= PD.threshold,
  );
  DOUT4[g] = select(vec4<f32>(0.0), DX4[g] * PD.scale, keep);
}
