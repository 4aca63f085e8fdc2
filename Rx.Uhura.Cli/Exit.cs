namespace Rx.Uhura.Cli;

/// <summary>The process exit codes of the <c>uhura</c> command (see CLI.md).</summary>
internal static class Exit
{
    /// <summary>Success (also after a graceful close on SIGINT / SIGTERM).</summary>
    public const int Ok = 0;

    /// <summary>Runtime failure: unreachable, timeout, peer error, connection lost.</summary>
    public const int Failure = 1;

    /// <summary>Bad usage: unknown option, malformed JSON argument, bad URI, unsupported value.</summary>
    public const int Usage = 2;
}

/// <summary>Bad usage detected by a command: exits <see cref="Exit.Usage"/> with the message on stderr.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>A runtime failure: exits <see cref="Exit.Failure"/> with the message on stderr.</summary>
internal sealed class CliFailureException(string message, Exception? innerException = null) : Exception(message, innerException);
