/** The subscription state machine lives in the ledger (src/ledger/transitions.ts); this re-export keeps old imports. */
export * from '../ledger/transitions';
