"""The official OpenAI Python SDK streams through an upstream with `stream_usage: inject`, without
asking for usage: every chunk it sees has a choice (no usage-only chunk reached it) and none
carries usage. Usage: openai_sdk_inject.py BASE_URL CLIENT_KEY"""
import sys

import openai

base_url, key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=20)
stream = client.chat.completions.create(
    model="gpt-mock", messages=[{"role": "user", "content": "Say hello."}], stream=True
)
chunks = list(stream)
# Indexing without a guard, as many clients do: a usage-only chunk would raise IndexError here.
pieces = [chunk.choices[0].delta.content or "" for chunk in chunks]
usages = {repr(chunk.usage) for chunk in chunks}
print("STREAM", len(pieces), "".join(pieces), "usage=" + ",".join(sorted(usages)))
