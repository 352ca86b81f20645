"""Tan & Wang (Interspeech 2018): causal convolutional recurrent network for real-time speech enhancement."""
