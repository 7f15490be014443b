import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { breakdown } from '../billing-math';
import { Clock } from '../common/clock';
import { FieldError, InvalidInputError, NotFoundError } from '../common/errors';
import { Page, paginate } from '../common/pagination';
import { CreatePlanDto, ListPlansQueryDto, MAX_INTERVAL_COUNT, PlanResponseDto, UpdatePlanDto } from './dto/plan.dto';
import { PlanEntity } from './plan.entity';

/** What a plan promises and never changes once it exists (only name, description and `active` do). */
export type PlanTerms = Readonly<Pick<PlanEntity, 'id' | 'amount' | 'taxFreeAmount' | 'currency' | 'interval' | 'intervalCount' | 'trialDays' | 'chargeMode'>>;

@Injectable()
export class PlansService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
  ) {}

  private get repo() {
    return this.db.getRepository(PlanEntity);
  }

  private readonly termsById = new Map<string, PlanTerms>();

  /**
   * A plan's terms, remembered once read (they never change); null: no such plan. Inside a transaction pass its
   * manager: a read through the pool while the transaction holds a connection (and row or advisory locks) could wait
   * for a connection that never comes when every one of the pool is in the same situation.
   */
  async terms(id: string, m?: EntityManager): Promise<PlanTerms | null> {
    const known = this.termsById.get(id);
    if (known) return known;
    const plan = await (m ?? this.db.manager).getRepository(PlanEntity).findOneBy({ id });
    if (!plan) return null;
    const terms: PlanTerms = {
      id: plan.id,
      amount: plan.amount,
      taxFreeAmount: plan.taxFreeAmount,
      currency: plan.currency,
      interval: plan.interval,
      intervalCount: plan.intervalCount,
      trialDays: plan.trialDays,
      chargeMode: plan.chargeMode,
    };
    if (this.termsById.size >= 10_000) this.termsById.clear();
    this.termsById.set(id, terms);
    return terms;
  }

  async create(dto: CreatePlanDto): Promise<PlanResponseDto> {
    const taxFree = dto.tax_free_amount ?? 0;
    const count = dto.interval_count ?? 1;
    const errors: FieldError[] = [];
    if (taxFree > dto.amount) errors.push({ field: 'tax_free_amount', message: 'tax_free_amount must not exceed amount' });
    if (count > MAX_INTERVAL_COUNT[dto.interval]) {
      errors.push({ field: 'interval_count', message: `interval_count must be at most ${MAX_INTERVAL_COUNT[dto.interval]} for interval ${dto.interval}` });
    }
    if (errors.length) throw new InvalidInputError(errors, errors.map((e) => e.message).join('; '));
    const now = this.clock.now();
    const saved = await this.repo.save(
      this.repo.create({
        name: dto.name.trim(),
        description: dto.description ?? null,
        amount: dto.amount,
        taxFreeAmount: taxFree,
        currency: 'KRW',
        interval: dto.interval,
        intervalCount: count,
        trialDays: dto.trial_days ?? 0,
        chargeMode: dto.charge_mode ?? 'scheduler',
        active: true,
        createdAt: now,
        updatedAt: now,
      }),
    );
    return this.map(saved);
  }

  async getEntity(id: string): Promise<PlanEntity> {
    const plan = await this.repo.findOneBy({ id });
    if (!plan) throw new NotFoundError('Plan', id);
    return plan;
  }

  async get(id: string): Promise<PlanResponseDto> {
    return this.map(await this.getEntity(id));
  }

  async list(query: ListPlansQueryDto): Promise<Page<PlanResponseDto>> {
    const qb = this.repo.createQueryBuilder('p');
    if (query.active !== undefined) qb.where('p.active = :active', { active: query.active === 'true' });
    return paginate(qb, query, (p) => this.map(p), 'p');
  }

  /** Only name, description and active change; the price of a plan never does. */
  async update(id: string, dto: UpdatePlanDto): Promise<PlanResponseDto> {
    const plan = await this.getEntity(id);
    if (dto.name !== undefined) plan.name = dto.name.trim();
    if (dto.description !== undefined) plan.description = dto.description;
    if (dto.active !== undefined) plan.active = dto.active;
    plan.updatedAt = this.clock.now();
    return this.map(await this.repo.save(plan));
  }

  map(p: PlanEntity): PlanResponseDto {
    const b = breakdown(p.amount, p.taxFreeAmount);
    return {
      id: p.id,
      name: p.name,
      description: p.description,
      amount: p.amount,
      tax_free_amount: p.taxFreeAmount,
      vat: b.vat,
      supply_amount: b.supply,
      currency: p.currency,
      interval: p.interval,
      interval_count: p.intervalCount,
      trial_days: p.trialDays,
      charge_mode: p.chargeMode,
      active: p.active,
      created_at: p.createdAt.toISOString(),
      updated_at: p.updatedAt.toISOString(),
    };
  }
}
