import { Module } from '@nestjs/common';
import { OperatorsService } from './operators.service';

/** Named console operators and their sessions. */
@Module({ providers: [OperatorsService], exports: [OperatorsService] })
export class OperatorsModule {}
