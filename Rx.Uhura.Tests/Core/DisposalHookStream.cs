namespace Rx.Uhura.Tests.Core;

/// <summary>
/// A stream that calls <see cref="OnDispose"/> once, when it is first disposed (either way), before its inner stream
/// goes: tests use it to act from inside a link's socket disposal.
/// </summary>
internal sealed class DisposalHookStream(Stream inner, Action? onDispose = null) : DelegatingStream(inner)
{
    private int _disposed;

    /// <summary>What runs at the first disposal (may be set after the stream was made).</summary>
    public Action? OnDispose { get; set; } = onDispose;

    public override ValueTask DisposeAsync()
    {
        RunHookOnce();
        return base.DisposeAsync();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            RunHookOnce();
        }

        base.Dispose(disposing);
    }

    private void RunHookOnce()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            OnDispose?.Invoke();
        }
    }
}
