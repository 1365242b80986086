"""Review phase: plan the human review from the predictions, run it in a backend (Ground Truth or
Label Studio), and collect the answers as normalized reviewed records."""
