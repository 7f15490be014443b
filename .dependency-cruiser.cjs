/**
 * The import rules of the service (npm run lint:deps, run by .ci/run). Money state has one owner, src/ledger:
 * controllers, the charge run, Bootpay's webhook and the console call down into it; it calls down into the gateway,
 * billing keys, plans and payments; nothing calls back up. scripts/check-module-cycles.mjs adds the rule that no two
 * feature folders import each other, directly or through others.
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A file must not import itself through others.',
      from: { path: '^src' },
      to: { circular: true },
    },
    {
      name: 'ledger-calls-down-only',
      severity: 'error',
      comment: 'The ledger owns money state; the API, the run, the webhooks, reports and the console call it, never the reverse.',
      from: { path: '^src/ledger/' },
      to: { path: '^src/(subscriptions|refunds|charging|webhooks|console|reports|test-clock|health|operators|customers)/' },
    },
    {
      name: 'run-does-not-import-inbound-webhook',
      severity: 'error',
      comment: "The charge run settles Bootpay's answers through the ledger, not through the inbound webhook's code.",
      from: { path: '^src/charging/' },
      to: { path: '^src/webhooks/' },
    },
    {
      name: 'gateway-is-the-bottom',
      severity: 'error',
      comment: 'The gateway adapter knows Bootpay and the shared kernel only.',
      from: { path: '^src/gateway/', pathNot: '\\.spec\\.ts$' },
      to: { path: '^src/', pathNot: '^src/(gateway|common|config)/' },
    },
    {
      name: 'only-the-gateway-imports-the-sdk',
      severity: 'error',
      comment: 'src/gateway is the only code that imports @bootpay/backend-js.',
      from: { path: '^src/', pathNot: '^src/gateway/' },
      to: { path: '@bootpay/backend-js' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
  },
};
