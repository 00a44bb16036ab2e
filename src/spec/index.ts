// The VM network spec: types, parsing (JSON/YAML) and validation.
export * from './errors';
export * from './parse';
export * from './rules';
export * from './schema';
export * from './types';
