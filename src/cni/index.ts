// The CNI layer: config loading, plugin execution, ADD/CHECK/DEL with a result cache.
export * from './args';
export * from './cache';
export * from './config';
export * from './errors';
export * from './exec';
export * from './network';
export * from './result';
export * from './version';
export * from './attach';
export * from './nad';
