// The entry of every cached target's key (see executors/key.ts), in plain
// JavaScript so that it starts with Node's compile cache on: this runs on every
// nx command that hashes a stage, and the cache spares it stripping the types
// of the TypeScript it loads (about 0.1 s per process).
import module from 'node:module';

module.enableCompileCache?.();
await import('./key.ts');
