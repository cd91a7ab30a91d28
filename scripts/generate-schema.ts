// Writes pipeline.schema.json from the zod schema in stages/config.ts, for
// editor completion in pipeline.yaml. `npm run schema`; a test checks it is current.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pipelineJsonSchema } from '../stages/config.ts';

const target = fileURLToPath(new URL('../pipeline.schema.json', import.meta.url));
writeFileSync(target, pipelineJsonSchema());
console.log(`wrote ${target}`);
