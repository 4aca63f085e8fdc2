namespace Microsoft.Reactive.Testing;

/// <summary>
/// Thrown by <see cref="ReactiveAssert"/> when an assertion fails. Internal on purpose: the real package throws
/// a test-framework exception instead, so tests should not catch this type by name.
/// </summary>
internal sealed class ReactiveAssertException : Exception
{
    public ReactiveAssertException(string message)
        : base(message)
    {
    }
}
