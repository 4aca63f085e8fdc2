using Polly;
using Polly.Retry;

namespace Rx.Uhura.Internal;

/// <summary>Builds the Polly pipeline that runs the reconnect backoff.</summary>
internal static class ReconnectPipeline
{
    public static ResiliencePipeline Build(ReconnectOptions options, TimeProvider timeProvider, Action<int, TimeSpan, Exception?>? onRetry)
    {
        var retry = new RetryStrategyOptions
        {
            ShouldHandle = static args => ValueTask.FromResult(args.Outcome.Exception is { } e && e is not OperationCanceledException and not ResubscribeNowException and not AuthenticationFailedException),
            BackoffType = DelayBackoffType.Exponential,
            Delay = options.FirstDelay,
            MaxDelay = options.MaxDelay,
            UseJitter = options.UseJitter,
            MaxRetryAttempts = options.MaxAttempts ?? int.MaxValue,
            OnRetry = args =>
            {
                onRetry?.Invoke(args.AttemptNumber + 1, args.RetryDelay, args.Outcome.Exception);
                return default;
            },
        };
        if (options.Randomizer is { } randomizer)
        {
            retry.Randomizer = randomizer;
        }

        switch (options.Backoff)
        {
            case ReconnectBackoff.Constant:
                retry.BackoffType = DelayBackoffType.Constant;
                retry.UseJitter = false;
                break;
            case ReconnectBackoff.Random:
                retry.UseJitter = false; // the delay is drawn below, once per attempt
                var random = options.Randomizer ?? System.Random.Shared.NextDouble;
                var (min, max) = (options.FirstDelay, options.MaxDelay);
                retry.DelayGenerator = _ => ValueTask.FromResult<TimeSpan?>(min + ((max - min) * random()));
                break;
        }

        return new ResiliencePipelineBuilder { TimeProvider = timeProvider }.AddRetry(retry).Build();
    }
}
