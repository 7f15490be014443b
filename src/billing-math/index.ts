export * from './periods';
export * from './money';
export * from './plan-change';
export * from './refund-amounts';
