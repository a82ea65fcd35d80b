// TypeScript runs through tsx. Node 20's loader hooks do not reach worker
// threads, so each test file runs in its own child process instead.
export default {
  files: ['test/**/*.test.ts'],
  extensions: { ts: 'module' },
  nodeArguments: ['--import=tsx'],
  workerThreads: false,
  // Integration tests build and boot kernels; they set their own t.timeout().
  // ava's timeout is inactivity across the whole run: a cold kernel build (10+ min
  // on 2 cores) holds every integration test behind the build lock.
  timeout: '40m',
  verbose: true,
};
