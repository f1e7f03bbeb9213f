/**
 * Learning-rate schedules as pure functions of the step, and `LRScheduler`,
 * which writes them into an optimizer's `lr`.
 *
 * A `Schedule` maps the 0-based index `t` of the optimizer step about to be
 * taken, and the base learning rate `base`, to that step's learning rate.
 * Schedules compose: `linearWarmup(w, cosine(total - w, 1e-5))` warms up
 * for `w` steps, then decays over the remaining `total - w`.
 *
 * @example
 * ```ts
 * const sched = new LRScheduler(opt, linearWarmup(100, cosine(900, 1e-5)));
 * for (let t = 0; t < 1000; t++) { trainStep(); opt.step(); sched.step(); }
 * ```
 *
 * @module
 */

/** The learning rate of 0-based step `t` given the base rate. */
export type Schedule = (t: number, base: number) => number;

function checkSteps(name: string, what: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) {
    throw new Error(`fanout: ${name}: ${what} must be a positive integer, got ${v}`);
  }
}

/** `lr(t) = base`. */
export function constant(): Schedule {
  return (_t, base) => base;
}

/** `lr(t) = base · gamma^⌊t / stepSize⌋` (PyTorch's StepLR). */
export function stepLR(stepSize: number, gamma = 0.1): Schedule {
  checkSteps("stepLR", "stepSize", stepSize);
  return (t, base) => base * gamma ** Math.floor(t / stepSize);
}

/** `lr(t) = base · gamma^t` (PyTorch's ExponentialLR). */
export function exponential(gamma: number): Schedule {
  return (t, base) => base * gamma ** t;
}

/**
 * Cosine annealing from `base` down to `minLr` over `totalSteps`, then flat:
 * `lr(t) = minLr + (base − minLr) · (1 + cos(π · min(t, T) / T)) / 2` with
 * `T = totalSteps` (PyTorch's CosineAnnealingLR without restarts).
 */
export function cosine(totalSteps: number, minLr = 0): Schedule {
  checkSteps("cosine", "totalSteps", totalSteps);
  return (t, base) =>
    minLr + (base - minLr) * (1 + Math.cos(Math.PI * Math.min(t, totalSteps) / totalSteps)) / 2;
}

/**
 * Linear warmup over `warmupSteps`, then `then` shifted to start at 0:
 * `lr(t) = base · (t + 1) / W` for `t < W`, else `then(t − W, base)`
 * (`then` defaults to `constant()`). The first step runs at `base / W` and
 * step `W − 1` at `base`.
 */
export function linearWarmup(warmupSteps: number, then: Schedule = constant()): Schedule {
  checkSteps("linearWarmup", "warmupSteps", warmupSteps);
  return (t, base) => t < warmupSteps ? base * (t + 1) / warmupSteps : then(t - warmupSteps, base);
}

/** Anything with a settable learning rate (every `Optimizer`). */
export interface HasLr {
  /** The learning rate of the next step. */
  lr: number;
}

/**
 * Drives an optimizer's `lr` from a schedule. The constructor sets the rate
 * of step 0; call `step()` after each `optimizer.step()` to set the next one.
 */
export class LRScheduler {
  /** The optimizer whose `lr` is set. */
  readonly optimizer: HasLr;
  /** The schedule. */
  readonly schedule: Schedule;
  /** The base rate handed to the schedule (the optimizer's `lr` at construction unless given). */
  readonly baseLr: number;
  #t = 0;

  /** Sets `optimizer.lr` to `schedule(0, baseLr)`. */
  constructor(optimizer: HasLr, schedule: Schedule, opts: { baseLr?: number } = {}) {
    this.optimizer = optimizer;
    this.schedule = schedule;
    this.baseLr = opts.baseLr ?? optimizer.lr;
    this.#apply();
  }

  /** Index of the step the optimizer's `lr` is currently set for. */
  get t(): number {
    return this.#t;
  }

  /** The rate currently set. */
  get lr(): number {
    return this.optimizer.lr;
  }

  /** Advances one step and sets the optimizer's `lr`; returns it. */
  step(): number {
    this.#t++;
    return this.#apply();
  }

  #apply(): number {
    const lr = this.schedule(this.#t, this.baseLr);
    if (!Number.isFinite(lr) || lr < 0) {
      throw new Error(`fanout: schedule gave learning rate ${lr} at step ${this.#t}`);
    }
    this.optimizer.lr = lr;
    return lr;
  }

  /** The position, for checkpoints. */
  stateDict(): { t: number } {
    return { t: this.#t };
  }

  /** Restores the position and sets the optimizer's `lr` for it. */
  loadStateDict(state: { t: number }): void {
    if (!Number.isInteger(state.t) || state.t < 0) {
      throw new Error(`fanout: LRScheduler.loadStateDict: bad step ${state.t}`);
    }
    this.#t = state.t;
    this.#apply();
  }
}
