import { ApiProperty } from '@nestjs/swagger';

export class ClockResponseDto {
  @ApiProperty({ format: 'date-time', description: "The service's time" }) now: string;
  @ApiProperty({ description: 'Whether the clock stands at a set instant' }) frozen: boolean;
}
