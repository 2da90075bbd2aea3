"""Fine-tuning on a model host: dataset → LoRA/QLoRA/full training in the LLaMA-Factory container →
merged model → Ollama. ``scripts/finetune`` is the CLI (``operate/finetune/cli.py``).

Modules:
  dataset   read and validate a dataset locally (alpaca / sharegpt / messages), report bad rows by
            line number, normalise, deterministic train/eval split
  config    method choice from GPU memory, training and merge YAML, dataset_info.json merge
  progress  trainer_log.jsonl parsing and the progress line
  models    record a fine-tuned model in the stack's Ollama model list (stack file or local state)
  host      where the commands run: one host of the resolved target (operate.targets), over its Remote
"""
