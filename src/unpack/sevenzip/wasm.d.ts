/**
 * The few WebAssembly JS-API types the 7-Zip pool uses. The project's lib (ES2023, no DOM)
 * and @types/node 20 do not declare them; Node has them at run time.
 */
declare global {
  namespace WebAssembly {
    class Module {
      constructor(bytes: Uint8Array);
    }
    class Instance {
      constructor(module: Module, imports?: Imports);
      readonly exports: Record<string, unknown>;
    }
    class Memory {
      readonly buffer: ArrayBuffer;
      grow(pages: number): number;
    }
    type Imports = Record<string, Record<string, unknown>>;
    function compile(bytes: Uint8Array): Promise<Module>;
  }
}
export {};
