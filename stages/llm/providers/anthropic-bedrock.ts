// Anthropic models on AWS Bedrock, through the vendor's AnthropicBedrock
// client (SigV4 signing, /model/<id>/invoke). Region: AWS_DEFAULT_REGION, then
// AWS_REGION, else us-east-1. Credentials: static keys (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, optional AWS_SESSION_TOKEN) or a Bedrock API key
// (AWS_BEARER_TOKEN_BEDROCK); with neither, AWS_PROFILE in the process
// environment lets the SDK's credential chain find a profile. Without any of
// these the first call fails naming the variable, so nothing ever falls back
// to probing the EC2 metadata endpoint by surprise.
import { MissingCredentialsError } from '../errors.ts';
import { messagesProvider } from './anthropic.ts';
import type { MessagesClient, MessagesClientHandle } from './anthropic.ts';
import { lazy, sdkTransport } from './shared.ts';
import type { ProviderFactory, ProviderSpec } from './shared.ts';
import { bedrockBaseURL, bedrockRegion } from './endpoints.ts';

export const createAnthropicBedrockProvider: ProviderFactory = (settings, opts) => {
  const getClient = lazy(async (): Promise<MessagesClientHandle> => {
    const env = opts.env;
    const bearer = env(settings.api_key_env ?? 'AWS_BEARER_TOKEN_BEDROCK') ?? null;
    const accessKey = env('AWS_ACCESS_KEY_ID') ?? null;
    const secretKey = env('AWS_SECRET_ACCESS_KEY') ?? null;
    const sessionToken = env('AWS_SESSION_TOKEN') ?? null;
    const staticKeys = accessKey !== null && secretKey !== null;
    if (!bearer && !staticKeys && !process.env['AWS_PROFILE']) {
      const missing = accessKey === null ? 'AWS_ACCESS_KEY_ID' : 'AWS_SECRET_ACCESS_KEY';
      throw new MissingCredentialsError(
        'anthropic_bedrock',
        missing,
        'with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or set AWS_BEARER_TOKEN_BEDROCK or AWS_PROFILE',
      );
    }
    const awsRegion = bedrockRegion(env);
    const { AnthropicBedrock } = await import('@anthropic-ai/bedrock-sdk');
    const common = {
      awsRegion,
      baseURL: bedrockBaseURL(settings, env, awsRegion),
      ...sdkTransport(settings, opts),
    };
    const client = bearer
      ? new AnthropicBedrock({ ...common, apiKey: bearer })
      : staticKeys
        ? new AnthropicBedrock({ ...common, apiKey: null, awsAccessKey: accessKey, awsSecretKey: secretKey, awsSessionToken: sessionToken })
        : new AnthropicBedrock({ ...common, apiKey: null });
    const secrets = [bearer, secretKey, sessionToken].filter((s): s is string => s !== null);
    return { client: client as unknown as MessagesClient, secrets };
  });
  return messagesProvider({ name: 'anthropic_bedrock', settings, getClient });
};

export const anthropicBedrockSpec: ProviderSpec = {
  create: createAnthropicBedrockProvider,
  noBatch:
    'Bedrock batch inference (CreateModelInvocationJob) needs S3 input and output buckets and an IAM role, ' +
    'and @anthropic-ai/bedrock-sdk has no batches; not supported yet, normal calls are used',
};
