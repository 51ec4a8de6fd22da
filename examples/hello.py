"""Hello, reason: one question through the state machine, offline, on the scripted model shipped in the package.

    python examples/hello.py

Put a model name in place of the ScriptedModel ("local/qwen2.5-coder-1.5b", "openai/gpt-4o-mini") to ask a real one.
"""

from orchestrator import Reasoner, ReasonConfig, ScriptedModel

# The scripted model replies in order: a step, the answer, then a reflection with its reward.
model = ScriptedModel(["Step 1: 'all but 9' run away, so 9 stay.", "Final answer: 9", "Sound. Reward: 0.9"])
reasoner = Reasoner(model, strategy="chain", config=ReasonConfig(verify=False))
result = reasoner.solve("A farmer has 17 sheep; all but 9 run away. How many are left?")
print(f"answer: {result.answer} (stop reason: {result.stop_reason})")
for step in result.steps:
    print(f"  step {step.index}: {step.kind}: {step.text}")
print(f"trajectory: {result.trajectory_path}")
