/** Every PostgreSQL advisory lock id the service takes, in one place. */
export enum DatabaseLock {
  Migrations = 7_301_001,
  BootstrapApiKeys = 7_301_002,
  ChargeRunCron = 7_301_003,
}
