"""Flow-matching diffusion forcing: the noise path (`flow_match`), training σ draws (`sigma_sampler`) and
streaming inference schedules (`schedules`). Import from those modules; nothing is re-exported here.
"""
