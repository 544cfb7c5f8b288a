"""One LLM call and nothing else, with no tracing code: run under `opentelemetry-instrument`.

`python one_call.py openai|anthropic`; base URLs and keys come from the SDKs' environment variables.
"""

import sys


def main(provider: str) -> None:
    messages = [{"role": "user", "content": "Hi"}]
    if provider == "openai":
        import openai

        openai.OpenAI(max_retries=0).chat.completions.create(model="gpt-4o", messages=messages)
    else:
        import anthropic

        anthropic.Anthropic(max_retries=0).messages.create(model="claude-x", max_tokens=50, messages=messages)
    print("app done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
