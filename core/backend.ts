/**
 * The kernel contract shared by the WebGPU backend and the CPU float64
 * reference backend.
 *
 * A backend works on flat storages and explicit sizes; it knows nothing of
 * shapes, autograd or broadcasting rules beyond what each kernel's attributes
 * spell out. `Tensor` (core/tensor.ts) owns shapes and checks them once, then
 * calls exactly one backend method per op. Every method here exists in both
 * backends with the same meaning, so that the CPU backend is the executable
 * specification the WGSL kernels are tested against.
 *
 * Layout: every float storage is row-major, `rows × cols` with `cols`
 * contiguous. Index storages hold signed 32-bit integers.
 *
 * @module
 */

/** Element types a storage may hold. `f16` is storage only: kernels compute in f32. */
export type DType = "f32" | "f16" | "i32";

/** A flat buffer owned by one backend. Opaque outside the backend. */
export interface Storage {
  /** Number of elements. */
  readonly size: number;
  /** Element type. */
  readonly dtype: DType;
  /** The backend that owns it. */
  readonly backend: Backend;
}

/** Element-wise unary functions, each with a derivative in `unaryGrad`. */
export type UnaryOp =
  | "relu"
  | "leaky_relu"
  | "gelu"
  | "sigmoid"
  | "tanh"
  | "exp"
  | "log"
  | "neg"
  | "abs"
  | "sqrt"
  | "affine";

/** Binary element-wise operators. */
export type BinaryOp = "add" | "sub" | "mul" | "div";

/**
 * How an operand of a binary op maps onto the `rows × cols` output:
 * `full` (same shape), `row` (one row of `cols`, repeated down the rows),
 * `col` (one column of `rows`, repeated across), `scalar` (one element).
 */
export type Broadcast = "full" | "row" | "col" | "scalar";

/** Segment reductions. Empty segments reduce to 0 for every kind. */
export type SegmentReduce = "sum" | "mean" | "max";

/** Axis of a dense reduction: all elements, down the rows (per column), across the columns (per row). */
export type ReduceAxis = "all" | "rows" | "cols";

/** Losses; each reduces to the mean over elements (or rows for cross-entropy). */
export type LossKind = "bce_logits" | "mse" | "l1" | "cross_entropy";

/** Optimizer update rules run as kernels, in place on parameter and state storages. */
export type OptimizerKind = "sgd" | "adam" | "adamw";

/** Attributes of an optimizer update. */
export interface OptimizerAttrs {
  /** Which update rule. */
  kind: OptimizerKind;
  /** Learning rate for this step. */
  lr: number;
  /** SGD momentum (0 disables; state1 unused then). */
  momentum: number;
  /** Nesterov momentum for SGD. */
  nesterov: boolean;
  /** Adam β1. */
  beta1: number;
  /** Adam β2. */
  beta2: number;
  /** Adam ε. */
  eps: number;
  /** L2 penalty (sgd, adam) or decoupled decay (adamw). */
  weightDecay: number;
  /** 1-based step count of this parameter: Adam's bias correction; SGD starts its momentum buffer at step 1. */
  step: number;
}

/**
 * The kernel set. `n` is an element count, `rows`/`cols` a 2-D extent.
 * Methods never mutate their inputs, except `optimizerStep`, which says so.
 * Operands hold exactly the sizes their attributes imply; float kernels take
 * `f32` operands (`f16` is converted with `cast` first).
 */
export interface Backend {
  /** "webgpu" or "cpu". */
  readonly name: "webgpu" | "cpu";
  /** Whether f16 storage is available. */
  readonly supportsF16: boolean;

  // ---- memory ----------------------------------------------------------------
  /** A new storage holding a copy of `data` (converted to `dtype`). */
  fromArray(data: ArrayLike<number>, dtype: DType): Storage;
  /** A new storage of `size` elements, every one equal to `value`. */
  full(size: number, value: number, dtype: DType): Storage;
  /** Reads the whole storage back. f32/f16 come back as Float32Array (Float64Array on cpu), i32 as Int32Array. */
  read(s: Storage): Promise<Float32Array | Float64Array | Int32Array>;
  /** Overwrites the contents of `s` with `data` (same size), ordered after all work issued so far. */
  write(s: Storage, data: ArrayLike<number>): void;
  /** Adds a reference; `release` drops one and recycles the memory at zero. */
  retain(s: Storage): void;
  /** Drops a reference (see `retain`); releasing more often than retained is an error. */
  release(s: Storage): void;
  /** Submits all work issued so far without waiting for it. */
  flush(): void;
  /** Resolves when all submitted work has finished. */
  sync(): Promise<void>;
  /** Converts between `f32` and `f16` storage. */
  cast(x: Storage, dtype: DType): Storage;

  // ---- dense math ------------------------------------------------------------
  /**
   * `out[m×n] = op(a) · op(b)` where `op(a)` is `m×k` (stored `k×m` when `transA`)
   * and `op(b)` is `k×n` (stored `n×k` when `transB`).
   */
  matmul(
    a: Storage,
    b: Storage,
    attrs: { m: number; k: number; n: number; transA: boolean; transB: boolean },
  ): Storage;
  /** `out[r,c] = a[ia(r,c)] op b[ib(r,c)]` with each operand's broadcast mode. */
  binary(
    op: BinaryOp,
    a: Storage,
    b: Storage,
    attrs: { rows: number; cols: number; aMode: Broadcast; bMode: Broadcast },
  ): Storage;
  /**
   * `out = f(x)`; `alpha` is the negative slope of leaky_relu and the scale of
   * `affine` (`alpha·x + beta`).
   */
  unary(op: UnaryOp, x: Storage, attrs: { n: number; alpha: number; beta: number }): Storage;
  /** `dx = dy · f'(x)`, given the input `x` and the forward output `y`. */
  unaryGrad(
    op: UnaryOp,
    x: Storage,
    y: Storage,
    dy: Storage,
    attrs: { n: number; alpha: number; beta: number },
  ): Storage;
  /**
   * Inverted dropout: keeps an element with probability `1-p` and scales it by
   * `1/(1-p)`. The mask is a pure hash of (`seed`, element index), so calling
   * it again on `dy` with the same seed gives the gradient.
   */
  dropout(x: Storage, attrs: { n: number; p: number; seed: number }): Storage;
  /** Sums of a `rows × cols` storage: one value (`all`), per column (`rows`), or per row (`cols`). */
  reduceSum(x: Storage, attrs: { rows: number; cols: number; axis: ReduceAxis }): Storage;
  /**
   * `Σ_i Σ_j xs[i][j]²` as a one-element storage: the squared L2 norm of
   * several storages together (`xs[i]` holds `sizes[i]` elements; 0 when
   * there are none). Gradient clipping's global norm in one call.
   */
  sumSquares(xs: readonly Storage[], attrs: { sizes: readonly number[] }): Storage;

  // ---- indexing --------------------------------------------------------------
  /** `out[i,:] = x[idx[i],:]` for `i < idx.size`; `x` has `srcRows` rows. */
  gather(x: Storage, idx: Storage, attrs: { srcRows: number; cols: number }): Storage;
  /** Column block `[start, start+len)` of a `rows × cols` storage. */
  sliceCols(x: Storage, attrs: { rows: number; cols: number; start: number; len: number }): Storage;
  /** Concatenates along columns: part `i` is `rows × cols[i]`. */
  concatCols(parts: Storage[], attrs: { rows: number; cols: number[] }): Storage;

  // ---- segments (destination-sorted edges) -----------------------------------
  /**
   * Reduces consecutive row ranges: segment `s` covers rows
   * `offsets[s] .. offsets[s+1]` of `x` (`offsets` has `segments+1` entries).
   * For `max`, `argmax` holds the winning row per (segment, column), -1 when empty.
   */
  segmentReduce(
    x: Storage,
    offsets: Storage,
    attrs: { segments: number; cols: number; reduce: SegmentReduce },
  ): { out: Storage; argmax?: Storage };
  /**
   * Gradient of segment max: `dx[r,c] = dy[seg(r),c]` where `argmax[seg(r),c] == r`,
   * else 0. `rowSegment[r]` is the segment of row `r`.
   */
  segmentMaxGrad(
    dy: Storage,
    argmax: Storage,
    rowSegment: Storage,
    attrs: { rows: number; cols: number },
  ): Storage;
  /** Softmax over the rows of each segment, per column independently. */
  segmentSoftmax(
    x: Storage,
    offsets: Storage,
    attrs: { segments: number; rows: number; cols: number },
  ): Storage;
  /** `dx = y ⊙ (dy − Σ_segment(dy ⊙ y))`. */
  segmentSoftmaxGrad(
    y: Storage,
    dy: Storage,
    offsets: Storage,
    attrs: { segments: number; rows: number; cols: number },
  ): Storage;

  // ---- normalisation ---------------------------------------------------------
  /** Layer norm over each row, with per-column `gamma` and `beta`. Returns per-row mean and 1/std. */
  layerNorm(
    x: Storage,
    gamma: Storage,
    beta: Storage,
    attrs: { rows: number; cols: number; eps: number },
  ): { y: Storage; mean: Storage; rstd: Storage };
  /** Gradients of layer norm with respect to x, gamma and beta. */
  layerNormGrad(
    x: Storage,
    gamma: Storage,
    mean: Storage,
    rstd: Storage,
    dy: Storage,
    attrs: { rows: number; cols: number },
  ): { dx: Storage; dgamma: Storage; dbeta: Storage };

  // ---- losses ----------------------------------------------------------------
  /**
   * Mean loss as a one-element storage. `pred` is `rows × cols`; `target` is the
   * same shape (f32) except for cross-entropy, where it is `rows` class ids (i32)
   * and `cols` is the number of classes. A class id outside `[0, cols)` is
   * invalid input: the CPU reference throws; a GPU kernel cannot, so WebGPU
   * gives that row zero loss and zero gradient (the mean still counts it).
   */
  loss(
    kind: LossKind,
    pred: Storage,
    target: Storage,
    attrs: { rows: number; cols: number },
  ): Storage;
  /** Gradient of `loss` with respect to `pred`, scaled by the one-element upstream gradient `dy`. */
  lossGrad(
    kind: LossKind,
    pred: Storage,
    target: Storage,
    dy: Storage,
    attrs: { rows: number; cols: number },
  ): Storage;

  // ---- optimisation ----------------------------------------------------------
  /**
   * Updates `param` in place from `grad`, keeping `state1` (momentum or Adam's m)
   * and `state2` (Adam's v) in place. A state the rule does not use may be any
   * distinct one-element storage (kernels must not touch it). When `gradNormSq` (a one-element storage
   * holding the squared global gradient norm) is given and `maxNorm > 0`, the
   * gradient is first multiplied by `min(1, maxNorm / (sqrt(gradNormSq) + 1e-6))`:
   * gradient clipping without a readback.
   */
  optimizerStep(
    param: Storage,
    grad: Storage,
    state1: Storage,
    state2: Storage,
    gradNormSq: Storage | null,
    attrs: OptimizerAttrs & { n: number; maxNorm: number },
  ): void;
}
