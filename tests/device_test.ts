import { NoAdapterError, requestGpu } from "../core/webgpu/mod.ts";
import { gpuBackend, noGpu } from "./gpu_env.ts";

function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

Deno.test("no adapter: a clear error with the remedy", async () => {
  const fakeGpu = { requestAdapter: () => Promise.resolve(null) } as unknown as GPU;
  let err: unknown;
  try {
    await requestGpu({ gpu: fakeGpu });
  } catch (e) {
    err = e;
  }
  assert(err instanceof NoAdapterError, "expected NoAdapterError");
  const msg = (err as Error).message;
  assert(msg.includes("no WebGPU adapter"), msg);
  assert(msg.includes("mesa-vulkan-drivers"), msg);
  assert(msg.includes("DENO_WEBGPU_BACKEND"), msg);
  assert(msg.includes("cpuBackend()"), msg);
});

Deno.test("no navigator.gpu: the same error", async () => {
  let err: unknown;
  try {
    await requestGpu({ gpu: undefined });
  } catch (e) {
    err = e;
  }
  assert(err instanceof NoAdapterError);
  assert((err as Error).message.includes("exposes no navigator.gpu"));
});

Deno.test({
  name: "device uses the adapter's limits, not the defaults",
  ignore: noGpu,
  fn() {
    const info = gpuBackend!.info;
    const dev = gpuBackend!.runtime.device;
    // The WebGPU default is 128 MiB for storage bindings and 256 MiB for buffers;
    // the device must carry what the adapter reports.
    assert(dev.limits.maxBufferSize === info.maxBufferSize);
    assert(dev.limits.maxStorageBufferBindingSize === info.maxStorageBufferBindingSize);
    assert(info.description.length > 0);
  },
});
