"""Agent framework calls with no tracing code: run under `opentelemetry-instrument`.

`python agents_app.py langchain|openai_agents|mcp`. The fake provider's URL comes from FAKE_OPENAI_BASE_URL;
the key is passed in code, so OPENAI_API_KEY stays unset and the Agents SDK's own exporter (which would
send traces to OpenAI) skips its export.
"""

import asyncio
import os
import sys
from pathlib import Path

BASE_URL = os.environ.get("FAKE_OPENAI_BASE_URL", "")


def langchain_app() -> None:
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return f"sunny in {city}"

    ChatOpenAI(model="gpt-4o", base_url=BASE_URL, api_key="test-key", max_retries=0).invoke("Hi")
    get_weather.invoke({"city": "Paris"})


def openai_agents_app() -> None:
    import openai
    from agents import Agent, OpenAIResponsesModel, Runner, function_tool

    @function_tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return f"sunny in {city}"

    client = openai.AsyncOpenAI(base_url=BASE_URL, api_key="test-key", max_retries=0)
    agent = Agent(name="weather_agent", instructions="w", tools=[get_weather],
                  model=OpenAIResponsesModel("agent-tools", client))
    asyncio.run(Runner.run(agent, "Weather in Paris?"))


def mcp_app() -> None:
    from mcp.client.client import Client
    from mcp.client.stdio import StdioServerParameters

    server = Path(__file__).with_name("mcp_server.py")

    async def main() -> None:
        async with Client(StdioServerParameters(command=sys.executable, args=[str(server)])) as client:
            await client.call_tool("get_weather", {"city": "Paris"})

    asyncio.run(main())


if __name__ == "__main__":
    {"langchain": langchain_app, "openai_agents": openai_agents_app, "mcp": mcp_app}[sys.argv[1]]()
    print("app done", flush=True)
