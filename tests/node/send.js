// Sends one GenAI trace (agent -> chat -> tool) with the OpenTelemetry JS SDK, over OTLP/gRPC or
// OTLP/HTTP (JSON), then prints {"traceId": ...} on stdout.
// Usage: node send.js 127.0.0.1:4317 [grpc]   |   node send.js 127.0.0.1:4318 http
'use strict';
const api = require('@opentelemetry/api');
const { TracerProvider, SimpleSpanProcessor, StackContextManager } = require('@opentelemetry/sdk-trace');
const { defaultResource, resourceFromAttributes } = require('@opentelemetry/resources');

async function main() {
  const endpoint = process.argv[2];
  const protocol = process.argv[3] || 'grpc';
  let exporter;
  if (protocol === 'http') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
    exporter = new OTLPTraceExporter({ url: `http://${endpoint}/v1/traces` });
  } else {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');
    exporter = new OTLPTraceExporter({ url: `http://${endpoint}` });
  }
  const provider = new TracerProvider({
    resource: defaultResource().merge(resourceFromAttributes({ 'service.name': 'node-app', 'service.version': '1.0.0' })),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  api.context.setGlobalContextManager(new StackContextManager().enable());
  const tracer = provider.getTracer('node-genai', '0.1.0');
  const agent = tracer.startSpan('invoke_agent planner', {
    attributes: { 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'planner' },
  });
  const ctx = api.trace.setSpan(api.context.active(), agent);
  const chat = tracer.startSpan('chat claude-sonnet-4-5', {
    kind: api.SpanKind.CLIENT,
    attributes: {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'anthropic',
      'gen_ai.request.model': 'claude-sonnet-4-5',
      'gen_ai.response.model': 'claude-sonnet-4-5-20250929',
      'gen_ai.response.finish_reasons': ['end_turn'],
      'gen_ai.usage.input_tokens': 321,
      'gen_ai.usage.output_tokens': 54,
      'gen_ai.usage.cache_creation.input_tokens': 100,
      'gen_ai.request.temperature': 0.5,
    },
  }, ctx);
  chat.addEvent('gen_ai.choice', { index: 0 });
  chat.end();
  const tool = tracer.startSpan('execute_tool weather', {
    attributes: { 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'weather' },
  }, ctx);
  tool.setStatus({ code: api.SpanStatusCode.ERROR, message: 'upstream 503' });
  tool.end();
  agent.end();
  await provider.forceFlush();
  await provider.shutdown();
  process.stdout.write(JSON.stringify({ traceId: agent.spanContext().traceId }) + '\n');
}

main().catch((err) => { console.error(err); process.exit(1); });
