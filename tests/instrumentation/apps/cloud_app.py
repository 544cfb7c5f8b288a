"""Gemini and Bedrock calls with no tracing code: run under `opentelemetry-instrument`.

The fake API's address comes from FAKE_CLOUD_URL.
"""

import json
import os

import boto3
from botocore.config import Config
from google import genai
from google.genai import types


def main() -> None:
    url = os.environ["FAKE_CLOUD_URL"]
    gemini = genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=url))
    gemini.models.generate_content(model="gemini-2.5-flash", contents="Hi")
    for _ in gemini.models.generate_content_stream(model="gemini-2.5-flash", contents="Hi"):
        pass
    gemini.models.embed_content(model="gemini-embedding-001", contents="Hi")

    bedrock = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=url,
                           aws_access_key_id="AKIDTEST", aws_secret_access_key="test-secret",
                           config=Config(retries={"total_max_attempts": 1}))
    messages = [{"role": "user", "content": [{"text": "Hi"}]}]
    bedrock.converse(modelId="amazon.nova-pro-v1:0", messages=messages)
    for _ in bedrock.converse_stream(modelId="amazon.nova-pro-v1:0", messages=messages)["stream"]:
        pass
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 10,
            "messages": [{"role": "user", "content": "Hi"}]}
    answer = bedrock.invoke_model(modelId="anthropic.claude-3-5-haiku-20241022-v1:0", body=json.dumps(body))
    answer["body"].read()
    print("app done", flush=True)


if __name__ == "__main__":
    main()
