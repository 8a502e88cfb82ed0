"""Drives a running `seed serve` with the official openai SDK and checks the answers.

Usage: python openai_client_check.py BASE_URL MODEL
"""
import sys

import openai

base, model = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base + "/v1", api_key="unused")

models = [m.id for m in client.models.list().data]
assert model in models, models

chat = client.chat.completions.create(
    model=model, messages=[{"role": "user", "content": "What is the capital of France?"}], max_tokens=24,
    temperature=0)
text = chat.choices[0].message.content
assert chat.choices[0].finish_reason in ("stop", "length"), chat
assert "Paris" in text, text
assert chat.usage.completion_tokens > 0 and chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens

pieces, finish, usage = [], None, None
stream = client.chat.completions.create(
    model=model, messages=[{"role": "user", "content": "What is the capital of France?"}], max_tokens=24,
    temperature=0, stream=True, stream_options={"include_usage": True})
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
assert "".join(pieces) == text, ("".join(pieces), text)
assert finish == chat.choices[0].finish_reason and usage is not None and usage.completion_tokens == chat.usage.completion_tokens

completion = client.completions.create(model=model, prompt="1, 2, 3, 4,", max_tokens=6, temperature=0, logprobs=2)
assert completion.choices[0].text.strip().startswith("5"), completion.choices[0].text
assert len(completion.choices[0].logprobs.tokens) == completion.usage.completion_tokens

try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    raise AssertionError("expected a 404")
except openai.NotFoundError as error:
    assert error.status_code == 404 and "no-such-model" in str(error), error
try:
    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], temperature=5)
    raise AssertionError("expected a 400")
except openai.BadRequestError as error:
    assert error.status_code == 400 and "temperature" in str(error), error

print(f"openai SDK {openai.__version__}: models, chat, streaming chat, completions, 404 and 400 all behave")
print(f"chat answer: {text!r}")
