"""The official OpenAI and Anthropic Python SDKs against fluxgate's one model-routed endpoint.
Usage: model_sdk_clients.py openai|anthropic PROXY_ORIGIN CLIENT_KEY"""
import sys

which, origin, key = sys.argv[1], sys.argv[2], sys.argv[3]
messages = [{"role": "user", "content": "Say hello."}]

if which == "openai":
    import openai

    client = openai.OpenAI(base_url=origin + "/v1", api_key=key, max_retries=0, timeout=20)
    print("MODELS", " ".join(sorted(model.id for model in client.models.list())))
    for name in ["gpt-4o", "claude-sonnet"]:
        completion = client.chat.completions.create(model=name, messages=messages)
        print("COMPLETION", name, completion.model, completion.choices[0].message.content)
        stream = client.chat.completions.create(model=name, messages=messages, stream=True)
        pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
        print("STREAM", name, len(pieces), "".join(pieces))
    try:
        client.chat.completions.create(model="not-configured", messages=messages)
        print("NOTFOUND none")
    except openai.NotFoundError as error:
        print("NOTFOUND", error.status_code, error.code)
else:
    import anthropic

    client = anthropic.Anthropic(base_url=origin, api_key=key, max_retries=0, timeout=20)
    print("MODELS", " ".join(sorted(model.id for model in client.models.list())))
    message = client.messages.create(model="claude-sonnet", max_tokens=16, messages=messages)
    print("MESSAGE", message.model, message.content[0].text)
    with client.messages.stream(model="claude-sonnet", max_tokens=16, messages=messages) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    print("STREAM", final.model, text)
