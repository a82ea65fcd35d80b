// TypeScript runs through tsx. Node 20's loader hooks do not reach worker
// threads, so each test file runs in its own child process instead.
export default {
  files: ['test/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  // Integration tests build and boot kernels; they set their own t.timeout().
  timeout: '20m',
  verbose: true,
};
