"""RLP (reinforcement learning as a pretraining objective): its stage loop (`loop`) and the
host-side assembly of contexts and thought rows (`thoughts`). The objective itself (reward,
advantages, loss, EMA teacher) is `reasonrl.objectives.rlp`."""
