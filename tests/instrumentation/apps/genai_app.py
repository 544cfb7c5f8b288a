"""A small GenAI app with no tracing code: run it under `opentelemetry-instrument`.

The SDKs take their base URLs and keys from OPENAI_BASE_URL / OPENAI_API_KEY and
ANTHROPIC_BASE_URL / ANTHROPIC_API_KEY, as a real deployment would.
"""

import asyncio

import anthropic
import openai

MESSAGES = [{"role": "user", "content": "Hi"}]


def main() -> None:
    oai = openai.OpenAI(max_retries=0)
    oai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    for _ in oai.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True,
                                         stream_options={"include_usage": True}):
        pass
    oai.embeddings.create(model="text-embedding-3-small", input="Hi")
    claude = anthropic.Anthropic(max_retries=0)
    claude.messages.create(model="claude-x", max_tokens=50, messages=MESSAGES)
    with claude.messages.stream(model="claude-x", max_tokens=50, messages=MESSAGES) as stream:
        stream.until_done()

    async def async_calls() -> None:
        await openai.AsyncOpenAI(max_retries=0).responses.create(model="gpt-4.1", input="Hi")

    asyncio.run(async_calls())
    try:
        oai.chat.completions.create(model="error-429", messages=MESSAGES)
    except openai.RateLimitError:
        pass
    print("app done", flush=True)


if __name__ == "__main__":
    main()
