// Imported first by suites that load test fixtures: those find ../shared relative to their
// source dir, which is one level off when they run compiled from dist/. Points them at the
// checkout's sibling ../shared unless TAPWIRE_SHARED says otherwise.
import * as path from 'node:path';

process.env.TAPWIRE_SHARED ??= path.resolve(__dirname, '..', '..', '..', 'shared');
