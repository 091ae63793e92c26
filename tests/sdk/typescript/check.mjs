// The official TypeScript SDK (@openrouter/sdk, whose API and schema ModelGates follows) as a
// client of the ModelGates emulator. Run by tests/tests/e2e/sdks.rs, which starts the emulator
// and injects the faults; not meant to be run by hand.
//
//   MODELGATES_BASE_URL=http://127.0.0.1:PORT node check.mjs 402 403 429
//
// It signs in (the SDK's authorization URL, PKCE S256, the code exchange, a wrong verifier),
// makes one chat call per status given, each of which the emulator was told to refuse, and
// prints the SDK's error type and message of each, one per line; then chats whole and
// streamed, with a tool, reads the key's metadata and the models, and is refused with an
// unknown key. It prints the key on its last line (stdout, for the test only). Any mismatch
// exits 1 with the reason on stderr.

import { OpenRouter } from "@openrouter/sdk";
import * as errors from "@openrouter/sdk/models/errors";

const base = process.env.MODELGATES_BASE_URL;
const serverURL = `${base}/api/v1`;
const noRetries = { strategy: "none" };
const model = "openai/gpt-5.2";

function check(condition, what) {
  if (!condition) {
    throw new Error(`check failed: ${what}`);
  }
}

function client(apiKey) {
  return new OpenRouter({ apiKey, serverURL, retryConfig: noRetries });
}

// The code the auto-approving emulator puts in the redirect to the callback.
async function approve(authUrl) {
  const answer = await fetch(authUrl, { redirect: "manual" });
  check(answer.status === 302, `/auth redirects (got ${answer.status})`);
  const code = new URL(answer.headers.get("location")).searchParams.get("code");
  check(code, "the redirect carries a code");
  return code;
}

async function signIn(sdk) {
  const { codeChallenge, codeVerifier } = await sdk.oAuth.createSHA256CodeChallenge();
  const authUrl = await sdk.oAuth.createAuthorizationUrl({
    callbackUrl: "http://localhost:3000/callback",
    codeChallenge,
    codeChallengeMethod: "S256",
    limit: 5,
  });
  check(authUrl.startsWith(`${base}/auth?`), `the authorization URL is the emulator's: ${authUrl}`);

  const wrongCode = await approve(authUrl);
  await expectError(
    () =>
      sdk.oAuth.exchangeAuthCodeForAPIKey({
        requestBody: { code: wrongCode, codeVerifier: "x".repeat(43), codeChallengeMethod: "S256" },
      }),
    errors.ForbiddenResponseError,
    "a wrong verifier",
  );

  const code = await approve(authUrl);
  const issued = await sdk.oAuth.exchangeAuthCodeForAPIKey({
    requestBody: { code, codeVerifier, codeChallengeMethod: "S256" },
  });
  check(issued.key.startsWith("sk-mg-v1-"), "a key");
  check(typeof issued.userId === "string", "a user id");
  return issued.key;
}

async function expectError(call, type, what) {
  try {
    await call();
  } catch (error) {
    check(error instanceof type, `${what}: ${type.name}, not ${error?.constructor?.name}: ${error}`);
    return error;
  }
  throw new Error(`${what}: no error`);
}

async function chat(sdk) {
  const whole = await sdk.chat.send({
    chatRequest: { model, messages: [{ role: "user", content: "hello there" }] },
  });
  const message = whole.choices[0].message;
  check(message.content === `[${model}] You said: hello there`, `whole reply: ${message.content}`);
  check(whole.usage.totalTokens > 0, "usage");

  const stream = await sdk.chat.send({
    chatRequest: { model, messages: [{ role: "user", content: "hello there" }], stream: true },
  });
  let text = "";
  let finish = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? "";
    finish = chunk.choices[0]?.finishReason ?? finish;
  }
  check(text === `[${model}] You said: hello there`, `streamed reply: ${text}`);
  check(finish === "stop", `streamed finish reason: ${finish}`);

  const tools = [
    { type: "function", function: { name: "lookup", parameters: { type: "object" } } },
  ];
  const called = await sdk.chat.send({
    chatRequest: { model, messages: [{ role: "user", content: "look it up" }], tools },
  });
  const call = called.choices[0].message.toolCalls[0];
  check(call.function.name === "lookup", `tool call: ${JSON.stringify(call)}`);
  check(JSON.parse(call.function.arguments).text === "look it up", "tool arguments");

  const streamedCall = await sdk.chat.send({
    chatRequest: { model, messages: [{ role: "user", content: "look it up" }], tools, stream: true },
  });
  let argumentsText = "";
  let name = null;
  for await (const chunk of streamedCall) {
    for (const piece of chunk.choices[0]?.delta?.toolCalls ?? []) {
      name = piece.function?.name ?? name;
      argumentsText += piece.function?.arguments ?? "";
    }
  }
  check(name === "lookup", "streamed tool name");
  check(JSON.parse(argumentsText).text === "look it up", `streamed tool arguments: ${argumentsText}`);
}

async function account(sdk, key) {
  const metadata = await sdk.apiKeys.getCurrentKeyMetadata();
  check(metadata.data.limit === 5, `key limit: ${metadata.data.limit}`);
  check(metadata.data.usage > 0, "key usage");

  const models = await sdk.models.list();
  check(models.result.data.length >= 1, "models");
  check(models.result.totalCount === models.result.data.length, "total count");
  const mine = await sdk.models.listForUser({ bearer: key });
  check(mine.result.data.length === models.result.data.length, "the user's models");
}

async function flow(statuses) {
  const anonymous = client(undefined);
  const key = await signIn(anonymous);
  for (const status of statuses) {
    await refused(status, key);
  }
  const sdk = client(key);
  await chat(sdk);
  await account(sdk, key);
  await expectError(
    () => client("sk-mg-v1-unknown").chat.send({ chatRequest: { model, messages: [{ role: "user", content: "hi" }] } }),
    errors.UnauthorizedResponseError,
    "an unknown key",
  );
  console.log(key);
}

const refusals = {
  402: errors.PaymentRequiredResponseError,
  403: errors.ForbiddenResponseError,
  429: errors.TooManyRequestsResponseError,
  503: errors.ServiceUnavailableResponseError,
};

async function refused(status, key) {
  const type = refusals[status];
  check(type, `a refusal the check knows: ${status}`);
  const error = await expectError(
    () => client(key).chat.send({ chatRequest: { model, messages: [{ role: "user", content: "hi" }] } }),
    type,
    `a ${status}`,
  );
  check(error.error?.code === Number(status), `the error's code: ${JSON.stringify(error.error)}`);
  console.log(`${type.name}: ${error.error.message}`);
}

try {
  await flow(process.argv.slice(2));
} catch (error) {
  console.error(error?.stack ?? String(error));
  process.exit(1);
}
