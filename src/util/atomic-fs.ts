/** The former home of util's file operations: its names, re-exported until every importer uses util/index.ts. */
export * from './index.js';
