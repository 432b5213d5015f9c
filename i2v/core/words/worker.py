"""The generator's own words: what loading did to each optimisation (the load report's details, kept in the
sidecar and the logs), a Stop obeyed at a phase boundary, why a worker was declared lost (the watchdog's
verdicts), the worker's states, and a folder whose model family is unknown."""

EN = {
    # the load report's details (i2v.pipeline): one per optimisation outcome
    "load_half_weights": "weights loaded as torch.{dtype} on CUDA",
    "load_half_weights_variant": "weights loaded as torch.{dtype} ({variant} variant) on CUDA",
    "load_cpu_float32": "CPU run: float32, since half-precision kernels on CPU are slow or missing",
    "load_xformers": "xformers memory-efficient attention",
    "load_sdpa_xformers_failed": "PyTorch SDPA (xformers failed: {error})",
    "load_sdpa_cuda": "PyTorch SDPA (AttnProcessor2_0, the diffusers default; memory-efficient/flash kernels on "
                      "CUDA)",
    "load_sdpa_cpu": "PyTorch SDPA (AttnProcessor2_0, the diffusers default; xformers is CUDA-only)",
    "load_no_checkpointing": "the component has no gradient checkpointing switch",
    "load_checkpointing_refused": "refused ({error})",
    "load_checkpointing_no_effect": "accepted, but it only acts when gradients are computed; generation runs under "
                                    "torch.no_grad(), so it saves no memory",
    "load_slicing_unused": "not used: the plan of each job (exact chunking, offload, decode chunk, VAE tiling and "
                           "the family's other parts) is chosen by the memory model",
    # a Stop obeyed at a boundary (i2v.runner, i2v.cancel_points)
    "cancelled_before_save": "cancelled before saving",
    "cancelled_after_denoise": "cancelled after denoising",
    "cancelled_during": "cancelled during {phase}",
    # why a worker was replaced: the {detail} of worker_died / worker_silent (i2v.worker.watchdog, supervisor)
    "lost_exit_code": "exit code {code}",
    "lost_no_heartbeat": "no heartbeat for {seconds} s during {phase}",
    "lost_stop_ignored": "still running {seconds} s after Stop",
    "worker_unexpected_reply": "Unexpected reply from the worker ({reply}); try again.",
    "no_card_fits": "no worker's card can run it ({card})",
    # the worker's model state (/health, the Workers panel)
    "state_worker_started": "worker started; model loads on first use",
    "state_worker_loading": "loading the model in the worker",
    "state_model_switched": "model switched; it loads on first use",
    "state_worker_restarted": "worker restarted; model reloads on next use",
    "state_worker_replaced": "a worker was replaced",
    # a folder no family recognises (i2v.models)
    "family_no_index": "{folder} has no readable model_index.json",
    "family_unknown": "{folder} holds a {class_name} model; this app runs {families}",
}

ZH = {
    "load_half_weights": "权重以 torch.{dtype} 加载到 CUDA",
    "load_half_weights_variant": "权重以 torch.{dtype}（{variant} 版本）加载到 CUDA",
    "load_cpu_float32": "CPU 运行：使用 float32，因为 CPU 上的半精度算子很慢或缺失",
    "load_xformers": "xformers 省显存注意力",
    "load_sdpa_xformers_failed": "PyTorch SDPA（xformers 启用失败：{error}）",
    "load_sdpa_cuda": "PyTorch SDPA（AttnProcessor2_0，diffusers 默认；CUDA 上使用省显存/flash 算子）",
    "load_sdpa_cpu": "PyTorch SDPA（AttnProcessor2_0，diffusers 默认；xformers 仅支持 CUDA）",
    "load_no_checkpointing": "该组件没有梯度检查点开关",
    "load_checkpointing_refused": "被拒绝（{error}）",
    "load_checkpointing_no_effect": "已接受，但只在计算梯度时起作用；生成在 torch.no_grad() 下运行，因此不省内存",
    "load_slicing_unused": "未使用：每个任务的方案（精确分块、卸载、解码分块、VAE 分块及该模型的其他部分）由内存模型决定",
    "cancelled_before_save": "保存前已取消",
    "cancelled_after_denoise": "去噪完成后已取消",
    "cancelled_during": "在 {phase} 阶段已取消",
    "lost_exit_code": "退出码 {code}",
    "lost_no_heartbeat": "在 {phase} 阶段 {seconds} 秒没有心跳",
    "lost_stop_ignored": "点击“停止”后 {seconds} 秒仍在运行",
    "worker_unexpected_reply": "工作进程的回复无法识别（{reply}）；请重试。",
    "no_card_fits": "没有任何工作进程的显卡能运行它（{card}）",
    "state_worker_started": "工作进程已启动；模型在首次使用时加载",
    "state_worker_loading": "正在工作进程中加载模型",
    "state_model_switched": "已切换模型；首次使用时加载",
    "state_worker_restarted": "工作进程已重启；下次使用时重新加载模型",
    "state_worker_replaced": "一个工作进程已被替换",
    "family_no_index": "{folder} 没有可读取的 model_index.json",
    "family_unknown": "{folder} 中是 {class_name} 模型；本应用支持 {families}",
}
