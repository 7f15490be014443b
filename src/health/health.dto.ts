import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class HealthCheckDto {
  @ApiProperty() ok: boolean;
  @ApiProperty({ type: 'integer' }) latency_ms: number;
  @ApiPropertyOptional({ description: 'Why the check failed' }) error?: string;
}

/** 200 while the database answers (the gateway is reported, not required); the same body comes with 503 when it does not. */
export class HealthResponseDto {
  @ApiProperty({ enum: ['ok', 'degraded', 'down'] }) status: 'ok' | 'degraded' | 'down';
  @ApiProperty({ type: HealthCheckDto }) database: HealthCheckDto;
  @ApiProperty({ type: HealthCheckDto, description: 'Bootpay' }) gateway: HealthCheckDto;
}
