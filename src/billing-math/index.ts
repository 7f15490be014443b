export * from './periods';
export * from './money';
